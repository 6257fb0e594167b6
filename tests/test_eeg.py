from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import SCHEMA
from mne_bids import BIDSPath, write_raw_bids

from brainrep import eeg, simulate
from brainrep.config import validate_config


def eeg_params(**changes) -> eeg.PreprocessSettings:
    """The settings of the validated ``eeg`` config section's defaults, plus ``changes``."""
    defaults = validate_config({}, SCHEMA)["eeg"]
    return eeg.PreprocessSettings.from_config(
        defaults | {"bad_channel_criteria": ["nan_flat", "deviation"]} | changes)


def test_preprocess_and_windows(small_demo, tmp_path):
    raw = eeg.read_bids_eeg(small_demo, small_demo / simulate.eeg_relpath("002"))
    clean, qc = eeg.preprocess(raw, eeg_params())
    assert clean.info["sfreq"] == 100.0 and qc["bad_channels_detected"] == []
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
    clean, _ = eeg.preprocess(raw, eeg_params(notch=False))
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


@pytest.fixture(scope="module")
def demo_raw(small_demo):
    return eeg.read_bids_eeg(small_demo, small_demo / simulate.eeg_relpath("005"))


@pytest.mark.parametrize(("fmt", "extension"), [("BrainVision", ".vhdr"), ("EDF", ".edf"),
                                                ("BDF", ".bdf"), ("EEGLAB", ".set"),
                                                ("FIF", ".fif")])
def test_every_mne_bids_format_is_read_with_its_sidecars(demo_raw, tmp_path, fmt, extension):
    raw = demo_raw.copy()
    raw.info["bads"] = ["T7"]
    path = BIDSPath(subject="01", task="rest", datatype="eeg", root=tmp_path)
    write_raw_bids(raw, path, format="BrainVision" if fmt == "FIF" else fmt,
                   allow_preload=True, overwrite=True, verbose="error")
    folder = tmp_path / "sub-01" / "eeg"
    if fmt == "FIF":  # MNE-BIDS writes no FIF for EEG but reads it: swap the data file
        raw.save(folder / "sub-01_task-rest_eeg.fif")
        for leftover in folder.glob("*_eeg.[ve]*"):
            leftover.unlink()
    [data] = folder.glob(f"*_eeg{extension}")
    back = eeg.read_bids_eeg(tmp_path, data)
    assert back.ch_names[:19] == raw.ch_names[:19] and back.info["bads"] == ["T7"]
    assert back.info["line_freq"] == raw.info["line_freq"]
    assert back.get_montage() is not None  # positions from electrodes.tsv
    scale = np.abs(raw.get_data(picks="eeg")).max()
    assert np.allclose(back.get_data(picks="eeg")[:, :1000], raw.get_data(picks="eeg")[:, :1000],
                       atol=1e-3 * scale)


def test_noisy_channels_are_detected_and_interpolated(demo_raw):
    raw = demo_raw.copy()
    rng = np.random.default_rng(0)
    data = raw.get_data()
    data[raw.ch_names.index("P4")] = 40 * data.std() * rng.standard_normal(raw.n_times)
    data[raw.ch_names.index("Fp1")] = 0.0  # a flat channel
    raw._data[:] = data
    clean, qc = eeg.preprocess(raw, eeg_params())
    assert {"P4", "Fp1"} <= set(qc["bad_channels_detected"]) and qc["interpolated"]
    assert len(qc["bad_channels_detected"]) <= 4 and clean.info["bads"] == []
    assert np.abs(clean.get_data(picks="P4")).max() < 5 * np.abs(clean.get_data()).std() * 10


def test_ica_removes_a_blink_component(demo_raw):
    raw = demo_raw.copy()  # 20 s
    sfreq = raw.info["sfreq"]
    blink = np.zeros(raw.n_times)
    for onset in np.arange(1.0, 19.0, 2.5):  # blinks: 300 ms bumps, frontal
        idx = int(onset * sfreq) + np.arange(int(0.3 * sfreq))
        blink[idx] = np.hanning(len(idx)) * 150e-6
    weights = {"Fp1": 1.0, "Fp2": 1.0, "F7": 0.5, "F8": 0.5, "F3": 0.4, "F4": 0.4, "Fz": 0.4}
    for ch, w in weights.items():
        raw._data[raw.ch_names.index(ch)] += w * blink
    params = eeg_params(ica={"enabled": True, "n_components": 15, "threshold": 0.5,
                             "remove": ["eye blink"]}, bad_channel_criteria=[])
    clean, qc = eeg.preprocess(raw, params)
    without, _ = eeg.preprocess(raw, replace(params, ica=replace(params.ica, enabled=False)))
    assert any("eye blink" in c for c in qc["ica_removed"])
    fp1 = clean.ch_names.index("Fp1")
    assert np.ptp(clean.get_data()[fp1]) < 0.6 * np.ptp(without.get_data()[fp1])


def test_event_locked_epochs_from_events_tsv(demo_raw):
    events = eeg.EventSettings(tmin=-0.2, tmax=0.8, baseline=(None, 0))
    clean, _ = eeg.preprocess(demo_raw, eeg_params())
    epochs, qc = eeg.make_event_epochs(clean, events, reject_uv=None)
    onsets = demo_raw.annotations.onset - demo_raw.first_time
    fits = (onsets - 0.2 >= 0) & (onsets + 0.8 <= demo_raw.times[-1])  # whole epochs only
    expected = list(demo_raw.annotations.description[fits])
    assert list(epochs.metadata["trial_type"]) == expected and len(expected) > 0
    assert qc["n_windows"] == len(epochs) and epochs.times[0] == pytest.approx(-0.2)
    with pytest.raises(RuntimeError, match="trial types \\['blink'\\]"):
        eeg.make_event_epochs(clean, replace(events, trial_types=("blink",)), reject_uv=None)


def test_run_recording_writes_outputs_and_the_window_store(small_demo, tmp_path):
    import json

    keys, epochs_files = [], []
    for subject in ("001", "002"):
        key = f"sub-{subject}_task-rest"
        qc = eeg.run_recording(small_demo, small_demo / simulate.eeg_relpath(subject),
                               tmp_path / f"{key}_proc-clean_raw.fif",
                               tmp_path / f"{key}_epo.fif", settings=eeg_params(),
                               out_figure=tmp_path / f"{key}_desc-psd_eeg.png")
        sidecar = json.loads((tmp_path / f"{key}_epo.json").read_text())
        assert sidecar["qc"]["n_windows"] == qc["n_windows"] == 10  # 20 s in 2-s windows
        assert sidecar["parameters"]["l_freq"] == 1.0 and "mne" in sidecar["SoftwareVersions"]
        assert (tmp_path / f"{key}_desc-psd_eeg.png").stat().st_size > 10_000
        keys.append(key)
        epochs_files.append(str(tmp_path / f"{key}_epo.fif"))
    eeg.stack_windows(epochs_files, keys, tmp_path / "w.npy", tmp_path / "w.tsv")
    table = pd.read_csv(tmp_path / "w.tsv", sep="\t")
    assert np.load(tmp_path / "w.npy").shape == (20, 19, 200)
    assert list(table.columns) == ["participant_id", "session", "task", "run", "window",
                                   "onset_s", "label"]
    assert set(table["label"]) == {"rest"} and table["participant_id"].nunique() == 2


def test_channel_names_are_matched_to_the_montage_after_normalisation():
    """BCI2000-style names (``Fc5.``, ``T3``, ``EEG Cz-REF``) get their standard positions;
    a channel the montage lacks is listed."""
    import mne

    names = ["Fc5.", "T3", "EEG Cz-REF", "oz", "X1", "FP1-F7"]
    raw = mne.io.RawArray(np.zeros((6, 100)), mne.create_info(names, 100.0, "eeg"),
                          verbose="error")
    missing = eeg.set_standard_montage(raw, "standard_1020")
    assert missing == ["X1", "FP1-F7"] and raw.ch_names == names  # bipolar: no one position
    reference = mne.io.RawArray(np.zeros((4, 100)), mne.create_info(
        ["FC5", "T7", "Cz", "Oz"], 100.0, "eeg"), verbose="error")
    reference.set_montage("standard_1020", verbose="error")
    ours = raw.get_montage().get_positions()["ch_pos"]
    theirs = reference.get_montage().get_positions()["ch_pos"]
    for name, standard in zip(names[:4], ["FC5", "T7", "Cz", "Oz"], strict=True):
        assert np.allclose(ours[name], theirs[standard])


def test_events_epoch_their_tasks_and_the_other_tasks_are_windowed(small_demo, tmp_path):
    """A dataset mixing paradigms: eeg.events.tasks gets event-locked epochs, every other
    task fixed windows of the same span, and both enter one window store."""
    import mne

    events = {"tasks": ["oddball"], "trial_types": [], "tmin": -0.2, "tmax": 0.8,
              "baseline": [None, 0]}
    path = small_demo / simulate.eeg_relpath("001")
    outputs = []
    for name, tasks in (("windowed", ["oddball"]), ("epoched", ["rest"])):
        params = eeg_params(window_s=1.0, events=events | {"tasks": tasks})
        eeg.run_recording(small_demo, path, tmp_path / f"{name}_raw.fif",
                          tmp_path / f"{name}_epo.fif", settings=params)
        outputs.append(str(tmp_path / f"{name}_epo.fif"))
    windowed, epoched = (mne.read_epochs(f, verbose="error") for f in outputs)
    assert "trial_type" not in windowed.metadata and len(windowed) == 20  # 20 s, 1-s windows
    assert set(epoched.metadata["trial_type"]) <= {"eyes_closed", "eyes_open"}
    assert len(epoched.times) == len(windowed.times) + 1
    eeg.stack_windows(outputs, ["sub-001_task-rest", "sub-001_task-rest"], tmp_path / "w.npy",
                      tmp_path / "w.tsv")
    assert np.load(tmp_path / "w.npy").shape == (len(windowed) + len(epoched), 19, 100)
    with pytest.raises(ValueError, match="eeg.window_s.*= 1"):
        validate_config({"eeg": {"tasks": ["rest", "oddball"], "events": events}}, SCHEMA)


def test_electrodes_in_two_coordinate_systems_give_positions_from_one(tmp_path):
    """Two electrodes.tsv (as mne-bids' tiny_bids): the head-frame one is used, in metres."""
    import json

    from brainrep.eeg import electrode_positions

    folder = tmp_path / "sub-01" / "ses-1" / "eeg"
    folder.mkdir(parents=True)
    rows = "name\tx\ty\tz\nCz\t0\t0\t90\nFz\t0\t60\t60\nBad\tn/a\tn/a\tn/a\n"
    (folder / "sub-01_ses-1_space-fsaverage_electrodes.tsv").write_text(rows)
    system = {"EEGCoordinateSystem": "fsaverage", "EEGCoordinateUnits": "mm"}
    sidecar = folder / "sub-01_ses-1_space-fsaverage_coordsystem.json"
    sidecar.write_text(json.dumps(system))
    recording = folder / "sub-01_ses-1_task-rest_eeg.vhdr"
    assert electrode_positions(recording) is None  # not the head frame, no fiducials
    sidecar.write_text(json.dumps(system | {
        "AnatomicalLandmarkCoordinates": {"NAS": [0, 100, 0], "LPA": [-80, 0, 0],
                                          "RPA": [80, 0, 0]},
        "AnatomicalLandmarkCoordinateUnits": "mm"}))
    chosen, montage = electrode_positions(recording)
    assert chosen.name == "sub-01_ses-1_space-fsaverage_electrodes.tsv"
    assert np.allclose(montage.get_positions()["ch_pos"]["Cz"], [0, 0, 0.09])  # mm -> m
    assert "Bad" not in montage.get_positions()["ch_pos"]
    (folder / "sub-01_ses-1_space-CapTrak_electrodes.tsv").write_text(
        "name\tx\ty\tz\nCz\t0\t0\t0.1\n")
    (folder / "sub-01_ses-1_space-CapTrak_coordsystem.json").write_text(json.dumps(
        {"EEGCoordinateSystem": "CapTrak", "EEGCoordinateUnits": "m"}))
    chosen, montage = electrode_positions(recording)
    assert chosen.name == "sub-01_ses-1_space-CapTrak_electrodes.tsv"
    assert montage.get_positions()["coord_frame"] == "head"
    assert electrode_positions(tmp_path / "sub-02_task-rest_eeg.vhdr") is None
