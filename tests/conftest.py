import os
from pathlib import Path

import pytest

from brainrep.simulate import DemoSpec, simulate_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BRAINREP_SHARED_DATA", REPO.parent / "shared" / "data"))
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


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
