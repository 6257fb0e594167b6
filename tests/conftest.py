import os
import shutil
from pathlib import Path

import pytest

from brainrep.simulate import DemoSpec, simulate_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BRAINREP_SHARED_DATA", REPO.parent / "shared" / "data"))
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
WORKFLOW_FILES = ["Snakefile", "workflow", "config", "envs", "profiles", "src"]


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> Path:
    """A 12-participant demo dataset (short recordings), written once per test session."""
    root = tmp_path_factory.mktemp("demo") / "bids"
    simulate_dataset(root, DemoSpec(n_subjects=12, eeg_duration_s=20.0, seed=7))
    return root


def shared_dataset(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} not present (set BRAINREP_SHARED_DATA)")
    return path


def copy_workflow(target: Path) -> Path:
    """A copy of the workflow (not of results/) in ``target``, to run Snakemake in."""
    target.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, symlinks=True)
        else:
            shutil.copy(source, target / name)
    return target
