import numpy as np
import pandas as pd
import pytest

from brainrep import eeg, simulate


def test_preprocess_and_windows(small_demo, tmp_path):
    raw = eeg.read_bids_eeg(small_demo, small_demo / simulate.eeg_relpath("002"))
    clean, qc = eeg.preprocess(raw, 1.0, 40.0, 100.0, "average", notch=True)
    assert clean.info["sfreq"] == 100.0
    assert np.allclose(clean.get_data().mean(axis=0), 0, atol=1e-12)  # average reference
    assert qc["line_noise_ratio"] > 5  # the simulated mains hum is detected
    epochs, window_qc = eeg.make_windows(clean, 2.0, 0.0, reject_uv=None)
    duration = raw.n_times / raw.info["sfreq"]
    assert len(epochs) == int(duration // 2.0) == window_qc["n_windows"]
    assert epochs.get_data().shape[1:] == (19, 200)
    overlapping, _ = eeg.make_windows(clean, 2.0, 1.0, reject_uv=None)
    assert len(overlapping) == int((duration - 2.0) // 1.0) + 1


def test_peak_to_peak_rejection_is_recorded(small_demo):
    raw = eeg.read_bids_eeg(small_demo, small_demo / simulate.eeg_relpath("002"))
    clean, _ = eeg.preprocess(raw, 1.0, 40.0, 100.0, "average", notch=False)
    _, qc = eeg.make_windows(clean, 2.0, 0.0, reject_uv=1.0)  # 1 µV: rejects everything
    assert qc["n_windows"] == 0 and qc["rejected_fraction"] == 1.0


def test_truncated_file_fails_with_its_name(small_demo, tmp_path):
    import shutil

    root = tmp_path / "bids"
    shutil.copytree(small_demo, root, ignore=shutil.ignore_patterns("derivatives"))
    data = root / "sub-003/eeg/sub-003_task-rest_eeg.vhdr"
    (root / "sub-003/eeg/sub-003_task-rest_eeg.eeg").write_bytes(b"\x00" * 10)
    with pytest.raises(RuntimeError, match="sub-003_task-rest_eeg.vhdr"):
        eeg.read_bids_eeg(root, data)


def test_band_power_finds_the_alpha_band():
    sfreq, times = 100.0, np.arange(200) / 100.0
    rng = np.random.default_rng(0)
    windows = 0.1 * rng.standard_normal((6, 2, 200))
    windows[:, 0] += np.sin(2 * np.pi * 10 * times)  # channel 0 carries 10 Hz
    bands = {"theta": [4, 8], "alpha": [8, 13], "beta": [13, 30]}
    power = eeg.band_power(windows, sfreq, bands)
    assert power.shape == (6, 2, 3)
    alpha = power[:, 0, 1]
    assert (alpha > power[:, 0, 0] + 1).all() and (alpha > power[:, 1, 1] + 1).all()
    table = pd.DataFrame({"participant_id": ["sub-1"] * 3 + ["sub-2"] * 3})
    features = eeg.band_power_table(windows, table, ["O1", "O2"], sfreq, bands)
    assert list(features["participant_id"]) == ["sub-1", "sub-2"]
    assert "alpha_O1" in features and features.shape == (2, 7)
