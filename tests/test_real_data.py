"""Real recordings from ../shared/data (skipped when absent)."""

import numpy as np
import pytest
from conftest import SCHEMA, shared_dataset

from brainrep import eeg
from brainrep.bids import find_eeg, read_participants
from brainrep.config import validate_config

pytestmark = pytest.mark.shared_data


def test_eegmat_edf_recordings_are_found_and_preprocessed():
    root = shared_dataset("eegmat")
    rest = find_eeg(root, "rest", [])
    arithmetic = find_eeg(root, "arithmetic", [])
    assert len(rest) == len(arithmetic) == 10
    assert all(r.path.endswith(".edf") for r in rest)
    assert len(read_participants(root / "participants.tsv")) == 10
    raw = eeg.read_bids_eeg(root, arithmetic[0].path)
    clean, qc = eeg.preprocess(raw, eeg.PreprocessSettings.from_config(
        validate_config({}, SCHEMA)["eeg"]))
    assert len(clean.ch_names) == 19  # the ECG and mastoid channels are not EEG
    assert qc["line_freq_hz"] == 50 and clean.info["sfreq"] == 100.0
    windows, window_qc = eeg.make_windows(clean, 2.0, 0.0, reject_uv=None)
    assert window_qc["n_windows"] == int(raw.n_times / raw.info["sfreq"] // 2.0)
    assert np.isfinite(windows.get_data()).all()


def test_abide_timeseries_are_found_with_their_participants(tmp_path):
    from brainrep import fmri
    from brainrep.bids import find_timeseries

    root = shared_dataset("abide-cc200")
    runs = find_timeseries(root, "rest", "CC200", [])
    participants = read_participants(root / "participants.tsv")
    assert len(runs) == 163
    assert {f"sub-{r.subject}" for r in runs} == set(participants["participant_id"])
    assert set(participants["site"]) == {"Caltech", "SDSU", "Stanford", "Trinity"}
    qc = fmri.connectivity_from_timeseries(runs[0].path, str(tmp_path / "relmat.tsv"),
                                           "correlation")
    assert qc["n_volumes"] > 100
