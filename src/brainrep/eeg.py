"""EEG stage: read any MNE-BIDS format, preprocess, window, and classical band-power features."""

from __future__ import annotations

import json
import logging
import re
import warnings
from pathlib import Path

import mne
import numpy as np
import pandas as pd
from mne_bids import BIDSPath, get_entities_from_fname, read_raw_bids
from scipy.signal import welch

from brainrep.exclusions import RecordingExcluded
from brainrep.io import atomic_output, write_sidecar

log = logging.getLogger(__name__)
# Reader warnings that mean the file holds less than its header promises.
TRUNCATION_WARNINGS = ("does not match the file size", "truncat", "number of records",
                       "less data than")


def read_bids_eeg(bids_root: str | Path, path: str | Path,
                  montage: str | None = None) -> mne.io.BaseRaw:
    """Load one BIDS EEG file with channel types, bad channels, montage and line frequency.

    Positions come from the file format itself (EEGLAB) or ``electrodes.tsv`` as MNE-BIDS
    reads them; where it reads none (e.g. ``electrodes.tsv`` in two coordinate systems), from
    :func:`electrode_positions`; else from the standard ``montage`` named (e.g.
    ``standard_1020``). An empty, corrupt or truncated file, or one that differs
    from its sidecar, raises :class:`RecordingExcluded` naming it.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise RecordingExcluded(path, "unreadable", "the file is empty (0 bytes). Restore it "
                                "from the source dataset, or remove it from the BIDS folder.")
    entities = get_entities_from_fname(path.name, on_error="ignore")
    bids_path = BIDSPath(root=bids_root, datatype="eeg", suffix="eeg", extension=path.suffix,
                         **{k: v for k, v in entities.items() if v is not None})
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw = read_raw_bids(bids_path, verbose="warning").load_data(verbose="warning")
    except Exception as err:  # MNE raises many types for corrupt or truncated files
        raise RecordingExcluded(path, "unreadable", f"cannot read this EEG recording ({err}). "
                                "Check that the file is complete and matches its sidecars, "
                                "or remove it from the BIDS folder.") from err
    damage = [str(w.message) for w in caught
              if any(t in str(w.message).lower() for t in TRUNCATION_WARNINGS)]
    if damage:
        raise RecordingExcluded(path, "truncated", f"the reader reports a damaged file "
                                f"({damage[0]}). Restore the complete file from the source "
                                "dataset.")
    check_against_sidecar(raw, path)
    if raw.get_montage() is None and (chosen := electrode_positions(path)):
        electrodes, dig = chosen
        raw.set_montage(dig, on_missing="ignore", verbose="error")
        log.info("%s: positions from %s", path, electrodes)
    if montage and raw.get_montage() is None:
        if missing := set_standard_montage(raw, montage):
            log.warning("%s: no position in montage %s for channels %s (after normalising "
                        "their names); they are not interpolated, and sensor_rotation is left "
                        "out.", path, montage, missing)
    return raw


# Old 10-20 names and the ones standard montages use.
CHANNEL_ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
REFERENCE_SUFFIX = re.compile(r"-(REF|LE|AR|AVG|A1|A2|M1|M2|CAR)$")


def normalise_channel(name: str) -> str:
    """A channel name as montages spell it, for matching only: case folded, an ``EEG ``
    prefix, a reference suffix (``-REF``, ``-LE``, ``-AR``, ``-A1``...) and trailing dots
    (BCI2000's ``Fc5.``) removed, old 10-20 names mapped to new ones (``T3`` -> ``T7``).
    Bipolar names (``FP1-F7``) keep both ends and so match no single position."""
    core = REFERENCE_SUFFIX.sub("", name.strip().upper().removeprefix("EEG ")).rstrip(".")
    return CHANNEL_ALIASES.get(core.strip(), core.strip())


def set_standard_montage(raw: mne.io.BaseRaw, montage: str) -> list[str]:
    """Give the EEG channels of ``raw`` the positions of the standard ``montage`` (e.g.
    ``standard_1020``), matching names after :func:`normalise_channel`; the channel names
    stay as recorded. Returns the EEG channels left without a position."""
    positions = mne.channels.make_standard_montage(montage).get_positions()
    known = {normalise_channel(ch): ch for ch in positions["ch_pos"]}
    eeg = [raw.ch_names[i] for i in mne.pick_types(raw.info, eeg=True, exclude=[])]
    found = {ch: positions["ch_pos"][known[normalise_channel(ch)]] for ch in eeg
             if normalise_channel(ch) in known}
    if found:
        raw.set_montage(mne.channels.make_dig_montage(
            ch_pos=found, nasion=positions["nasion"], lpa=positions["lpa"],
            rpa=positions["rpa"], coord_frame=positions["coord_frame"]),
            on_missing="ignore", verbose="error")
    return [ch for ch in eeg if ch not in found]


#: Coordinate systems whose axes are MNE's head frame (RAS, origin between the ears, from the
#: fiducials), preferred when a recording has electrodes.tsv in several systems. Any other
#: system needs its fiducials (AnatomicalLandmarkCoordinates) to be placed in the head frame.
HEAD_FRAME_SYSTEMS = ("CapTrak", "ElektaNeuromag")
UNITS_M = {"m": 1.0, "cm": 0.01, "mm": 0.001}


def electrode_positions(path: str | Path) -> tuple[Path, mne.channels.DigMontage] | None:
    """Channel positions from the ``*_electrodes.tsv`` beside an EEG recording (its
    participant and session), in any BIDS coordinate system: with several, the first in a
    head-frame system (:data:`HEAD_FRAME_SYSTEMS`), else the first by name. Units come from
    the matching ``*_coordsystem.json`` (m, cm or mm; m when absent), fiducials from its
    ``AnatomicalLandmarkCoordinates`` (MNE transforms positions to the head frame with them).
    Returns the file chosen and the montage, or None (no file, or a system that is not the
    head frame and has no fiducials: the standard montage then applies)."""
    path = Path(path)
    entities = get_entities_from_fname(path.name, on_error="ignore")
    prefix = "_".join(f"{key}-{entities[name]}" for name, key in
                      (("subject", "sub"), ("session", "ses")) if entities.get(name))
    candidates = sorted(path.parent.glob(f"{prefix}*_electrodes.tsv"))

    def system(electrodes: Path) -> dict:
        sidecar = electrodes.with_name(electrodes.name.replace("_electrodes.tsv",
                                                               "_coordsystem.json"))
        return json.loads(sidecar.read_text()) if sidecar.exists() else {}

    if not candidates:
        return None
    chosen = next((c for c in candidates if system(c).get("EEGCoordinateSystem")
                   in HEAD_FRAME_SYSTEMS), candidates[0])
    if len(candidates) > 1:
        log.warning("%s: electrodes in %d files; using %s (%s)", path, len(candidates),
                    chosen.name, system(chosen).get("EEGCoordinateSystem", "no coordsystem"))
    info = system(chosen)
    scale = UNITS_M.get(info.get("EEGCoordinateUnits", "m"), 1.0)
    table = pd.read_csv(chosen, sep="\t", na_values=["n/a"], encoding="utf-8-sig")
    table = table.dropna(subset=["x", "y", "z"])
    ch_pos = {row.name: np.array([row.x, row.y, row.z]) * scale
              for row in table.itertuples(index=False)}
    landmarks = {k.lower(): np.asarray(v) * UNITS_M.get(
        info.get("AnatomicalLandmarkCoordinateUnits", "m"), 1.0)
        for k, v in info.get("AnatomicalLandmarkCoordinates", {}).items()
        if k in ("NAS", "LPA", "RPA")}
    head = info.get("EEGCoordinateSystem") in HEAD_FRAME_SYSTEMS
    if not head and len(landmarks) < 3:
        log.warning("%s: %s is in %s without fiducials; its positions are not used", path,
                    chosen.name, info.get("EEGCoordinateSystem", "an unknown system"))
        return None
    return chosen, mne.channels.make_dig_montage(
        ch_pos=ch_pos, nasion=landmarks.get("nas"), lpa=landmarks.get("lpa"),
        rpa=landmarks.get("rpa"), coord_frame="head" if head else "unknown")


def check_against_sidecar(raw: mne.io.BaseRaw, path: Path) -> None:
    """Compare what the reader returned with the recording's ``_eeg.json``: duration
    (``RecordingDuration``, s; 1 s or 1 % tolerance), ``SamplingFrequency`` (Hz) and
    ``EEGChannelCount``. Less data than the sidecar says (truncation), another sampling
    rate or channel count raise :class:`RecordingExcluded`; more data than it says is
    logged and used."""
    sidecar = path.with_name(path.name.rsplit(".", 1)[0] + ".json")
    if not sidecar.is_file():
        return
    expected = json.loads(sidecar.read_text())
    sfreq = raw.info["sfreq"]
    if (want := expected.get("SamplingFrequency")) and abs(sfreq - float(want)) > 1e-3 * sfreq:
        raise RecordingExcluded(path, "sidecar_mismatch", f"the file is sampled at {sfreq} Hz "
                                f"but {sidecar.name} says SamplingFrequency {want}. Correct the "
                                "sidecar or the file.")
    if (want := expected.get("RecordingDuration")) not in (None, "n/a"):
        duration, tolerance = raw.n_times / sfreq, max(1.0, 0.01 * float(want))
        if duration < float(want) - tolerance:
            raise RecordingExcluded(path, "truncated", f"the file holds {duration:.1f} s of "
                                    f"data but {sidecar.name} says RecordingDuration {want} s. "
                                    "Restore the complete file, or correct the sidecar.")
        if duration > float(want) + tolerance:  # more data than promised: not damage
            log.warning("%s holds %.1f s of data, more than %s's RecordingDuration %s s; "
                        "using the data. Correct the sidecar.", path, duration, sidecar.name,
                        want)
    n_eeg = len(mne.pick_types(raw.info, eeg=True, exclude=[]))
    if (want := expected.get("EEGChannelCount")) not in (None, "n/a") and n_eeg != int(want):
        raise RecordingExcluded(path, "sidecar_mismatch", f"the file has {n_eeg} EEG channels "
                                f"but {sidecar.name} says EEGChannelCount {want}. Correct the "
                                "sidecar or the channel types in channels.tsv.")


def detect_bad_channels(raw: mne.io.BaseRaw, criteria: list[str], seed: int = 0) -> list[str]:
    """Noisy EEG channels by PyPREP's criteria (``nan_flat``, ``deviation``: robust z of the
    amplitude, ``correlation``: low correlation with the other channels). RANSAC is left out:
    it needs positions and takes minutes per recording."""
    from pyprep.find_noisy_channels import NoisyChannels

    noisy = NoisyChannels(raw, random_state=seed, ransac=False)
    for criterion in criteria:
        getattr(noisy, f"find_bad_by_{criterion}")()
    return sorted(noisy.get_bads())


def remove_artifact_components(raw: mne.io.BaseRaw, n_components: float, remove: list[str],
                               threshold: float, seed: int = 0) -> list[str]:
    """Fit extended-Infomax ICA, label components with ICLabel, and remove those whose label
    is in ``remove`` with probability >= ``threshold`` (in place). Returns their labels."""
    from mne_icalabel import label_components

    ica = mne.preprocessing.ICA(n_components=n_components, method="infomax",
                                fit_params={"extended": True}, random_state=seed)
    ica.fit(raw, verbose="error")
    labels = label_components(raw, ica, method="iclabel")
    ica.exclude = [i for i, (label, p) in enumerate(zip(labels["labels"], labels["y_pred_proba"],
                                                        strict=True))
                   if label in remove and p >= threshold]
    ica.apply(raw, verbose="error")
    return [f"{i}:{labels['labels'][i]}" for i in ica.exclude]


def line_noise_ratio(raw: mne.io.BaseRaw, line_freq: float) -> float:
    """Power at the line frequency over the median power of 1-40 Hz (1 = no line noise)."""
    psd = raw.compute_psd(fmin=1, fmax=min(line_freq + 5, raw.info["sfreq"] / 2 - 1),
                          verbose="error")
    freqs, power = psd.freqs, psd.get_data().mean(axis=0)
    at_line = power[np.argmin(np.abs(freqs - line_freq))]
    return float(at_line / np.median(power[(freqs >= 1) & (freqs <= 40)]))


def preprocess(raw: mne.io.BaseRaw, params: dict) -> tuple[mne.io.BaseRaw, dict]:
    """Pick EEG, notch, band-pass, find and interpolate bad channels, resample, re-reference,
    and optionally remove ICA artifact components; ``params`` is the ``eeg`` config section.

    Returns the cleaned raw and a QC record (bad channels from channels.tsv and detected,
    line-noise ratio, ICA components removed, duration in s).
    """
    raw = raw.copy().pick("eeg")
    line_freq = raw.info["line_freq"]
    qc = {"bad_channels_sidecar": list(raw.info["bads"]),
          "duration_s": raw.n_times / raw.info["sfreq"], "line_freq_hz": line_freq,
          "sfreq_raw_hz": raw.info["sfreq"]}
    if line_freq and line_freq < raw.info["sfreq"] / 2:
        qc["line_noise_ratio"] = line_noise_ratio(raw, line_freq)
        if params["notch"]:
            raw.notch_filter(np.arange(line_freq, raw.info["sfreq"] / 2, line_freq),
                             verbose="error")
    raw.filter(params["l_freq"], params["h_freq"], verbose="error")
    criteria = params["bad_channel_criteria"]
    detected = detect_bad_channels(raw, criteria) if criteria else []
    raw.info["bads"] = sorted(set(raw.info["bads"]) | set(detected))
    qc["bad_channels_detected"] = detected
    qc["bad_channels"] = list(raw.info["bads"])
    qc["interpolated"] = bool(raw.info["bads"]) and raw.get_montage() is not None
    if qc["interpolated"]:
        raw.interpolate_bads(reset_bads=True, verbose="error")
    raw.resample(params["sfreq"], verbose="error")
    reference = params["reference"]
    raw.set_eeg_reference("average" if reference == "average" else [reference],
                          verbose="error")
    ica = params["ica"]
    qc["ica_removed"] = (remove_artifact_components(raw, ica["n_components"], ica["remove"],
                                                    ica["threshold"])
                         if ica["enabled"] else [])
    return raw, qc


def make_windows(raw: mne.io.BaseRaw, window_s: float, overlap_s: float,
                 reject_uv: float | None) -> tuple[mne.Epochs, dict]:
    """Fixed-length windows over the recording, peak-to-peak rejection recorded."""
    epochs = mne.make_fixed_length_epochs(raw, duration=window_s, overlap=overlap_s,
                                          preload=True, reject_by_annotation=True,
                                          verbose="error")
    n_total = len(epochs)
    if reject_uv is not None:
        epochs.drop_bad(reject={"eeg": reject_uv * 1e-6}, verbose="error")
    onsets = epochs.events[:, 0] / raw.info["sfreq"] - raw.first_time
    with mne.utils.use_log_level("error"):
        epochs.metadata = pd.DataFrame({"onset_s": np.round(onsets, 4)})
    qc = {"n_windows": len(epochs), "rejected_fraction": 1 - len(epochs) / max(n_total, 1),
          "duration_kept_s": len(epochs) * (window_s - overlap_s)}
    return epochs, qc


def make_event_epochs(raw: mne.io.BaseRaw, events: dict,
                      reject_uv: float | None) -> tuple[mne.Epochs, dict]:
    """Event-locked epochs from the recording's events.tsv annotations (``trial_type``)."""
    wanted = events["trial_types"] or sorted(set(raw.annotations.description))
    missing = sorted(set(wanted) - set(raw.annotations.description))
    if missing:
        raise RuntimeError(f"trial types {missing} are not in this recording's events.tsv "
                           f"(it has {sorted(set(raw.annotations.description))}). Fix "
                           "eeg.events.trial_types.")
    found, event_id = mne.events_from_annotations(
        raw, event_id={t: i + 1 for i, t in enumerate(wanted)}, verbose="error")
    baseline = tuple(events["baseline"]) if events["baseline"] else None
    epochs = mne.Epochs(raw, found, event_id, tmin=events["tmin"], tmax=events["tmax"],
                        baseline=baseline, preload=True, reject_by_annotation=True,
                        verbose="error")
    n_total = len(epochs)
    if reject_uv is not None:
        epochs.drop_bad(reject={"eeg": reject_uv * 1e-6}, verbose="error")
    names = {v: k for k, v in event_id.items()}
    with mne.utils.use_log_level("error"):
        epochs.metadata = pd.DataFrame({
            "onset_s": np.round(epochs.events[:, 0] / raw.info["sfreq"] - raw.first_time, 4),
            "trial_type": [names[e] for e in epochs.events[:, 2]]})
    qc = {"n_windows": len(epochs), "rejected_fraction": 1 - len(epochs) / max(n_total, 1),
          "duration_kept_s": len(epochs) * (events["tmax"] - events["tmin"])}
    return epochs, qc


def run_recording(bids_root: str, path: str, out_raw: str, out_epochs: str, params: dict,
                  out_figure: str | None = None) -> dict:
    """Preprocess and epoch one recording; write cleaned raw, epochs, their sidecars and,
    if ``out_figure`` is given, its PSD before and after preprocessing.

    ``params`` is the ``eeg`` config section: fixed-length windows, or event-locked epochs
    when ``events`` is set (for the tasks in ``events.tasks``, or every task when it is empty).
    """
    original = read_bids_eeg(bids_root, path, params["montage"])
    events = params["events"]
    task = get_entities_from_fname(Path(path).name, on_error="ignore").get("task")
    if events and events.get("tasks") and task not in events["tasks"]:
        events = None  # this task is windowed
    shortest = events["tmax"] - events["tmin"] if events else params["window_s"]
    if original.times[-1] < shortest:
        raise RecordingExcluded(path, "too_short", f"{original.times[-1]:.1f} s of data, "
                                f"shorter than one {shortest} s window. Lower eeg.window_s, or "
                                "leave this recording out.")
    raw, qc = preprocess(original, params)
    if events:
        try:
            epochs, window_qc = make_event_epochs(raw, events, params["reject_uv"])
        except RuntimeError as err:
            raise RuntimeError(f"{path}: {err}") from err
    else:
        epochs, window_qc = make_windows(raw, params["window_s"], params["overlap_s"],
                                         params["reject_uv"])
    if len(epochs) == 0:
        raise RecordingExcluded(path, "all_windows_rejected", "every epoch was rejected. Raise "
                                "eeg.reject_uv or check the recording's amplitude units.")
    qc |= window_qc
    raw.save(out_raw, overwrite=True, verbose="error")
    epochs.save(out_epochs, overwrite=True, verbose="error")
    for out in (out_raw, out_epochs):
        write_sidecar(out, sources=[path], parameters=params, qc=qc)
    if out_figure:
        from brainrep.plots import recording_psd_figure

        recording_psd_figure(original, raw, qc, Path(path).name.split("_eeg.")[0], out_figure)
    return qc


def stack_windows(epochs_files: list[str], keys: list[str], out_array: str,
                  out_table: str) -> None:
    """Concatenate every recording's windows into one float32 array (µV) and a metadata table.

    The array has shape (n_windows, n_channels, n_times); channels are the ones common to every
    recording, in the order of the first, and n_times the shortest recording's. The SSL
    stage reads these without MNE.
    """
    infos = [mne.read_epochs(f, preload=False, verbose="error") for f in epochs_files]
    common = [ch for ch in infos[0].ch_names if all(ch in e.ch_names for e in infos)]
    n_windows = sum(len(e) for e in infos)
    # event-locked epochs hold one sample more than windows of the same span: keep the shortest
    n_times = min(len(e.times) for e in infos)
    rows, start = [], 0
    with atomic_output(out_array) as temporary:
        store = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float32,
                                          shape=(n_windows, len(common), n_times))
        for key, epochs in zip(keys, infos, strict=True):
            data = epochs.get_data(picks=common, units="uV", verbose="error")[..., :n_times]
            store[start:start + len(data)] = data
            start += len(data)
            rows += _window_rows(key, epochs)
        store.flush()
        del store
    with atomic_output(out_table) as temporary:
        pd.DataFrame(rows).to_csv(temporary, sep="\t", index=False)
    montage = infos[0].get_montage()
    positions = montage.get_positions()["ch_pos"] if montage is not None else {}
    write_sidecar(out_array, sources=epochs_files, channels=common,
                  sfreq_hz=infos[0].info["sfreq"], units="uV",
                  positions_m={ch: positions[ch].tolist() if ch in positions else None
                               for ch in common})


def _window_rows(key: str, epochs: mne.BaseEpochs) -> list[dict]:
    """The window table's rows of one recording (``key``: ``sub-<label>_<entities>``)."""
    entities = dict(part.split("-", 1) for part in key.split("_"))
    labels = (epochs.metadata["trial_type"] if "trial_type" in epochs.metadata
              else [entities.get("task")] * len(epochs))
    return [{"participant_id": f"sub-{entities['sub']}", "session": entities.get("ses", "n/a"),
             "task": entities.get("task"), "run": entities.get("run", "n/a"), "window": window,
             "onset_s": onset, "label": label}
            for window, (onset, label) in enumerate(zip(epochs.metadata["onset_s"], labels,
                                                        strict=True))]


def band_power(windows: np.ndarray, sfreq: float, bands: dict[str, list[float]]) -> np.ndarray:
    """Log10 band power, shape (n_windows, n_channels, n_bands), from Welch periodograms."""
    freqs, psd = welch(windows, fs=sfreq, nperseg=min(windows.shape[-1], int(2 * sfreq)),
                       axis=-1)
    power = [psd[..., (freqs >= lo) & (freqs < hi)].mean(axis=-1) for lo, hi in bands.values()]
    return np.log10(np.stack(power, axis=-1))


def band_power_table(windows: np.ndarray, table: pd.DataFrame, channels: list[str],
                     sfreq: float, bands: dict[str, list[float]]) -> pd.DataFrame:
    """Per-participant mean log band power, one column per ``<band>_<channel>``."""
    power = band_power(windows, sfreq, bands)
    columns = [f"{band}_{ch}" for ch in channels for band in bands]
    frame = pd.DataFrame(power.reshape(len(power), -1), columns=columns)
    frame.insert(0, "participant_id", table["participant_id"].to_numpy())
    return frame.groupby("participant_id", sort=True).mean().reset_index()


def covariance_table(windows: np.ndarray, table: pd.DataFrame,
                     channels: list[str]) -> pd.DataFrame:
    """Per-participant spatial covariance (µV²), the mean of shrunk window covariances.

    One column per upper-triangle entry ``cov__<a>__<b>`` (diagonal included), so the SPD
    matrix can be rebuilt; the tangent-space projection that makes them linear features is
    fitted downstream, inside each training fold (``predict.TangentSpaceFeatures``).
    """
    from pyriemann.estimation import Covariances

    covs = Covariances(estimator="lwf").transform(np.asarray(windows, dtype=np.float64))
    upper = np.triu_indices(len(channels))
    frame = pd.DataFrame(covs[:, upper[0], upper[1]],
                         columns=[f"cov__{channels[i]}__{channels[j]}"
                                  for i, j in zip(*upper, strict=True)])
    frame.insert(0, "participant_id", table["participant_id"].to_numpy())
    return frame.groupby("participant_id", sort=True).mean().reset_index()
