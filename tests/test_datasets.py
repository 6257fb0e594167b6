"""The whole workflow on real EEG files in other formats and layouts (../shared/data/eeg-formats):
mne-bids' tiny_bids (BrainVision, one participant, a session, two electrode files) and the
EEGLAB tutorial recording (.set/.fdt) as a six-participant BIDS dataset."""

import shutil
import subprocess
import sys
from pathlib import Path

import mne
import pandas as pd
import pytest
import yaml
from conftest import copy_workflow, shared_dataset

pytestmark = [pytest.mark.workflow, pytest.mark.shared_data]


def _run(workdir: Path, config: dict) -> subprocess.CompletedProcess:
    (workdir / "dataset.yaml").write_text(yaml.safe_dump(config))
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile",
                           "dataset.yaml"], cwd=workdir, capture_output=True, text=True)


def _no_traceback(run: subprocess.CompletedProcess, results: Path) -> None:
    logs = [log for log in (results / "logs").rglob("*.log") if "Traceback" in log.read_text()]
    assert "Traceback" not in run.stderr and not logs, logs


def test_one_brainvision_participant_with_a_session_runs_end_to_end(tmp_path):
    root = tmp_path / "tiny"
    shutil.copytree(shared_dataset("eeg-formats") / "tiny_bids", root)
    workdir = copy_workflow(tmp_path / "workflow")
    run = _run(workdir, {"name": "tiny", "demo": {"enabled": False}, "bids": {"root": str(root)},
                         # 2 s of data: 1-s windows, no amplitude rejection
                         "eeg": {"window_s": 1.0, "reject_uv": None},
                         "fmri": {"enabled": False}, "ssl": {"eeg": {"epochs": 2}}})
    assert run.returncode == 0, run.stderr[-3000:]
    results = workdir / "results" / "tiny"
    _no_traceback(run, results)
    epochs = mne.read_epochs(results / "sub-01/eeg/sub-01_ses-eeg_task-rest_epo.fif",
                             verbose="error")
    # the head-frame (CapTrak) electrodes.tsv of the two gives every EEG channel a position
    positions = epochs.get_montage().get_positions()
    assert positions["coord_frame"] == "head" and len(positions["ch_pos"]) == len(
        mne.pick_types(epochs.info, eeg=True))
    assert (results / "group/ssl/modality-eeg_encoder-ssl_participants.parquet").exists()
    feasibility = pd.read_csv(results / "group/feasibility.tsv", sep="\t")
    skipped = feasibility[~feasibility["runs"]].set_index("stage")["reason"]
    # no target column: prediction and subtyping are skipped, saying which key to set
    assert "downstream.targets: participants.tsv has no column 'diagnosis'" in skipped["predict"]
    assert "downstream.subtyping.column" in skipped["subtype"]


def test_eeglab_recordings_run_from_bids_to_prediction(tmp_path):
    from mne_bids import BIDSPath, write_raw_bids

    source = shared_dataset("eeg-formats") / "eeglab" / "test_raw.set"
    root = tmp_path / "eeglab"
    for index in range(1, 7):  # copies of the tutorial recording, as six participants
        raw = mne.io.read_raw_eeglab(source, preload=True, verbose="error")
        write_raw_bids(raw, BIDSPath(subject=f"{index:02d}", task="oddball", datatype="eeg",
                                     root=root),
                       format="EEGLAB", allow_preload=True, verbose="error")
    participants = pd.read_csv(root / "participants.tsv", sep="\t")
    participants["group"] = ["a", "b"] * 3
    participants["age"] = [20, 30, 40, 50, 60, 70]
    participants.to_csv(root / "participants.tsv", sep="\t", index=False, na_rep="n/a")
    workdir = copy_workflow(tmp_path / "workflow")
    run = _run(workdir, {
        "name": "eeglab", "demo": {"enabled": False}, "bids": {"root": str(root)},
        "eeg": {"tasks": ["oddball"]}, "fmri": {"enabled": False},
        "ssl": {"eeg": {"epochs": 2}},
        "downstream": {"targets": ["group"], "positive_class": "b", "confounds": ["age"],
                       "site_column": None, "outer_folds": 3, "n_permutations": 5,
                       "n_bootstrap": 20, "label_repeats": 1,
                       "subtyping": {"feature_sets": []}}})
    assert run.returncode == 0, run.stderr[-3000:]
    results = workdir / "results" / "eeglab"
    _no_traceback(run, results)
    qc = pd.read_csv(results / "group/eeg/qc.tsv", sep="\t")
    assert len(qc) == 6 and (qc["n_windows"] > 0).all()
    metrics = pd.read_csv(results / "group/predict/target-group_metrics.tsv", sep="\t")
    assert {"eeg_bandpower", "ssl_eeg", "random_eeg"} <= set(metrics["feature_set"])
    assert (metrics["n_participants"] == 6).all()
