import hashlib

import numpy as np
import pandas as pd
from mne_bids import BIDSPath, read_raw_bids

from brainrep import simulate
from brainrep.bids import read_participants
from brainrep.simulate import DemoSpec, simulate_dataset


def _digest(root, relpaths):
    return [hashlib.sha256((root / p).read_bytes()).hexdigest() for p in relpaths]


def test_same_seed_writes_the_same_dataset(tmp_path):
    spec = DemoSpec(n_subjects=12, eeg_duration_s=10.0, bold_volumes=40, seed=3)
    files = ["participants.tsv", simulate.TRUTH_RELPATH, simulate.confounds_relpath("004"),
             "sub-004/eeg/sub-004_task-rest_eeg.eeg"]
    simulate_dataset(tmp_path / "a", spec)
    simulate_dataset(tmp_path / "b", spec)
    assert _digest(tmp_path / "a", files) == _digest(tmp_path / "b", files)
    simulate_dataset(tmp_path / "c", DemoSpec(n_subjects=12, eeg_duration_s=10.0,
                                              bold_volumes=40, seed=4))
    assert _digest(tmp_path / "a", files) != _digest(tmp_path / "c", files)


def test_bids_layout_and_participants(small_demo):
    participants = read_participants(small_demo / "participants.tsv")
    assert list(participants.columns) == ["participant_id", "diagnosis", "site", "age", "sex",
                                          "anhedonia", "anxiety"]
    assert participants["diagnosis"].isna().sum() >= 1  # some participants unlabeled
    assert set(participants["site"]) == {"A", "B"}
    for name in ("channels.tsv", "events.tsv"):
        assert (small_demo / f"sub-001/eeg/sub-001_task-rest_{name}").is_file()
    assert list((small_demo / "sub-001/eeg").glob("*_electrodes.tsv"))
    raw = read_raw_bids(BIDSPath(root=small_demo, subject="001", task="rest", datatype="eeg",
                                 suffix="eeg", extension=".vhdr"), verbose="error")
    assert len(raw.ch_names) == 19 and raw.info["line_freq"] in (50.0, 60.0)
    assert set(raw.annotations.description) == {"eyes_closed", "eyes_open"}
    truth = pd.read_csv(small_demo / simulate.TRUTH_RELPATH, sep="\t")
    assert set(truth["subtype"]) == {0, 1, 2}


def _alpha_peak(raw) -> float:
    psd = raw.compute_psd(fmin=6, fmax=14, picks=["O1", "O2", "Pz"], verbose="error")
    return float(psd.freqs[psd.get_data().mean(axis=0).argmax()])


def test_planted_alpha_slowing_and_its_null():
    rng = np.random.default_rng(0)
    row = pd.Series({"_severity": 1.0, "_subtype": 1, "site": "A"})
    control = row.copy()
    control["_subtype"] = 0
    spec = DemoSpec(eeg_duration_s=60.0)
    peaks = {label: [_alpha_peak(simulate.simulate_eeg(r, spec, rng)) for _ in range(4)]
             for label, r in (("subtype1", row), ("control", control))}
    assert np.mean(peaks["control"]) - np.mean(peaks["subtype1"]) > 1.0
    null = DemoSpec(eeg_duration_s=60.0, effect_size=0.0)
    null_peaks = [_alpha_peak(simulate.simulate_eeg(row, null, rng)) for _ in range(4)]
    assert abs(np.mean(null_peaks) - np.mean(peaks["control"])) < 0.6
