"""Each envs/<family>.yaml: its pip part, installed alone into a fresh virtual environment, runs
that family's stage code on a small demo (the conda part is Python itself; no conda here).

The families run in DAG order on shared files: bids simulates the data, eeg and fmri
preprocess it, ssl trains on the EEG windows, stats predicts and subtypes.
"""

import os
import subprocess
import textwrap
import venv

import pytest
import yaml
from conftest import REPO

pytestmark = pytest.mark.envs

FAMILY_RUNS = {
    "bids": """
        from brainrep.simulate import DemoSpec, simulate_dataset
        from brainrep.bids import find_eeg, find_bold, write_index
        simulate_dataset(ROOT / "bids", DemoSpec(n_subjects=12, eeg_duration_s=20.0, seed=3))
        index = write_index(str(ROOT / "bids/participants.tsv"),
                            {"eeg": find_eeg(ROOT / "bids", "rest", []),
                             "bold": find_bold(ROOT / "bids/derivatives/fmriprep", "rest",
                                               "MNI152NLin2009cAsym", [])},
                            ROOT / "recordings.tsv", ROOT / "participants.tsv")
        assert len(index) == 24
    """,
    "eeg": """
        from brainrep import eeg
        from brainrep.bids import find_eeg
        from brainrep.config import validate_config
        params = eeg.PreprocessSettings.from_config(validate_config({}, SCHEMA)["eeg"])
        recordings = find_eeg(ROOT / "bids", "rest", [])
        files = []
        for rec in recordings:
            files.append(str(ROOT / f"{rec.key}_epo.fif"))
            eeg.run_recording(ROOT / "bids", rec.path, str(ROOT / f"{rec.key}_raw.fif"),
                              files[-1], settings=params,
                              out_figure=str(ROOT / f"{rec.key}_psd.png"))
        eeg.stack_windows(files, [r.key for r in recordings], ROOT / "eeg.npy", ROOT / "eeg.tsv")
    """,
    "fmri": """
        from brainrep import fmri
        from brainrep.atlases import Atlas, read_labels
        from brainrep.bids import confounds_path, find_bold
        [image] = (ROOT / "bids/derivatives/atlas").glob("*_dseg.nii.gz")
        atlas = Atlas("demo", read_labels(str(image).replace(".nii.gz", ".tsv")),
                      image=str(image))
        params = fmri.ParcellateSettings()
        for rec in find_bold(ROOT / "bids/derivatives/fmriprep", "rest", "MNI152NLin2009cAsym",
                             [])[:3]:
            fmri.run_recording(rec.path, confounds_path(rec.path, "MNI152NLin2009cAsym"), atlas,
                               str(ROOT / f"{rec.key}_timeseries.tsv"),
                               str(ROOT / f"{rec.key}_relmat.tsv"), settings=params)
    """,
    "ssl": """
        import numpy as np, pandas as pd
        from brainrep.config import validate_config
        from brainrep.ssl import embed_windows, pretrain
        from brainrep.ssl.augment import sidecar_positions
        from brainrep.ssl.settings import SSLSettings
        settings = SSLSettings.from_config(validate_config({}, SCHEMA)["ssl"]["eeg"] | {
            "epochs": 1, "seed": 0, "device": "cpu"}).for_modality("eeg")
        table = pd.read_csv(ROOT / "eeg.tsv", sep="\\t")
        windows = np.load(ROOT / "eeg.npy")
        pretrain(windows, table, ROOT / "model.pt", sidecar_positions(ROOT / "eeg.json"),
                 settings=settings)
        _, participants = embed_windows(ROOT / "model.pt", windows, table, "ssl")
        participants.to_parquet(ROOT / "ssl_eeg.parquet")
    """,
    "stats": """
        import pandas as pd
        from brainrep.bids import read_participants
        from brainrep.io import read_features
        from brainrep.predict import PredictionSettings, evaluate
        from brainrep.subtype import SubtypingSettings, find_subtypes
        participants = read_participants(ROOT / "participants.tsv")
        features = {"ssl_eeg": read_features(ROOT / "ssl_eeg.parquet")}
        metrics, _, _ = evaluate(features, participants, "diagnosis", settings=PredictionSettings(
            outer_folds=3, n_permutations=5, n_bootstrap=20))
        assert {"stratified_group_kfold", "leave_site_out"} <= set(metrics["cv_scheme"])
        find_subtypes(features["ssl_eeg"].set_index("participant_id"),
                      participants.set_index("participant_id")[["site"]],
                      settings=SubtypingSettings(regress_out=("site",), k_max=2, n_components=2,
                                                 n_bootstrap=3, n_null=3), seed=0)
    """,
}


def _pip_part(family: str) -> list[str]:
    env = yaml.safe_load((REPO / "envs" / f"{family}.yaml").read_text())
    return next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory):
    return tmp_path_factory.mktemp("families")


@pytest.mark.parametrize("family", list(FAMILY_RUNS))
def test_family_runs_in_its_own_environment(family, shared_root, tmp_path_factory):
    assert sorted(FAMILY_RUNS) == sorted(p.stem for p in (REPO / "envs").glob("*.yaml"))
    prefix = tmp_path_factory.mktemp(f"env-{family}")
    venv.create(prefix, with_pip=True)
    python = str(prefix / "bin" / "python")
    # --no-compile: modules are byte-compiled when first imported, not all of torch up front
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-compile", "-c",
                              str(REPO / "constraints.txt"), *_pip_part(family)],
                             capture_output=True, text=True, timeout=1200)
    assert install.returncode == 0, install.stderr[-3000:]
    post_deploy = REPO / "envs" / f"{family}.post-deploy.sh"  # as Snakemake runs it
    if post_deploy.exists():
        deploy = subprocess.run(["bash", str(post_deploy)], capture_output=True, text=True,
                                timeout=1200, env={**os.environ, "PATH": f"{prefix}/bin:"
                                                   + os.environ["PATH"]})
        assert deploy.returncode == 0, deploy.stderr[-3000:]
    code = (f"from pathlib import Path\nROOT = Path({str(shared_root)!r})\n"
            f"SCHEMA = {str(REPO / 'workflow/schemas/config.schema.yaml')!r}\n"
            "import numpy\n"  # from this environment, not from the test's
            f"assert numpy.__file__.startswith({str(prefix)!r}), numpy.__file__\n"
            + textwrap.dedent(FAMILY_RUNS[family]))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "MPLBACKEND": "Agg"}
    run = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env,
                         timeout=1200, cwd=shared_root)
    assert run.returncode == 0, f"{family}: {run.stderr[-4000:]}"
