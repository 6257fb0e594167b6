"""Per-recording EEG preprocessing: bad channels, ICA, filters, re-reference, windows or
event-locked epochs, and the job that writes them."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pandas as pd
from mne_bids import get_entities_from_fname

from brainrep.eeg.read import read_bids_eeg
from brainrep.eeg.settings import EventSettings, PreprocessSettings
from brainrep.exclusions import RecordingExcluded
from brainrep.io import write_sidecar


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


def preprocess(raw: mne.io.BaseRaw, settings: PreprocessSettings
               ) -> tuple[mne.io.BaseRaw, dict]:
    """Pick EEG, notch, band-pass, find and interpolate bad channels, resample, re-reference,
    and optionally remove ICA artifact components (:class:`PreprocessSettings`).

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
        if settings.notch:
            raw.notch_filter(np.arange(line_freq, raw.info["sfreq"] / 2, line_freq),
                             verbose="error")
    raw.filter(settings.l_freq, settings.h_freq, verbose="error")
    criteria = list(settings.bad_channel_criteria)
    detected = detect_bad_channels(raw, criteria) if criteria else []
    raw.info["bads"] = sorted(set(raw.info["bads"]) | set(detected))
    qc["bad_channels_detected"] = detected
    qc["bad_channels"] = list(raw.info["bads"])
    qc["interpolated"] = bool(raw.info["bads"]) and raw.get_montage() is not None
    if qc["interpolated"]:
        raw.interpolate_bads(reset_bads=True, verbose="error")
    raw.resample(settings.sfreq, verbose="error")
    reference = settings.reference
    raw.set_eeg_reference("average" if reference == "average" else [reference],
                          verbose="error")
    ica = settings.ica
    qc["ica_removed"] = (remove_artifact_components(raw, ica.n_components, list(ica.remove),
                                                    ica.threshold)
                         if ica.enabled else [])
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


def make_event_epochs(raw: mne.io.BaseRaw, events: EventSettings,
                      reject_uv: float | None) -> tuple[mne.Epochs, dict]:
    """Event-locked epochs from the recording's events.tsv annotations (``trial_type``)."""
    wanted = list(events.trial_types) or sorted(set(raw.annotations.description))
    missing = sorted(set(wanted) - set(raw.annotations.description))
    if missing:
        raise RuntimeError(f"trial types {missing} are not in this recording's events.tsv "
                           f"(it has {sorted(set(raw.annotations.description))}). Fix "
                           "eeg.events.trial_types.")
    found, event_id = mne.events_from_annotations(
        raw, event_id={t: i + 1 for i, t in enumerate(wanted)}, verbose="error")
    baseline = tuple(events.baseline) if events.baseline else None
    epochs = mne.Epochs(raw, found, event_id, tmin=events.tmin, tmax=events.tmax,
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
          "duration_kept_s": len(epochs) * (events.tmax - events.tmin)}
    return epochs, qc


def run_recording(bids_root: str, path: str, out_raw: str, out_epochs: str, *,
                  settings: PreprocessSettings, out_figure: str | None = None) -> dict:
    """Preprocess and epoch one recording; write cleaned raw, epochs, their sidecars and,
    if ``out_figure`` is given, its PSD before and after preprocessing.

    Fixed-length windows, or event-locked epochs when ``settings.events`` is set (for the
    tasks in ``events.tasks``, or every task when it is empty).
    """
    original = read_bids_eeg(bids_root, path, settings.montage)
    events = settings.events
    task = get_entities_from_fname(Path(path).name, on_error="ignore").get("task")
    if events and events.tasks and task not in events.tasks:
        events = None  # this task is windowed
    shortest = events.tmax - events.tmin if events else settings.window_s
    if original.times[-1] < shortest:
        raise RecordingExcluded(path, "too_short", f"{original.times[-1]:.1f} s of data, "
                                f"shorter than one {shortest} s window. Lower eeg.window_s, or "
                                "leave this recording out.")
    raw, qc = preprocess(original, settings)
    if events:
        try:
            epochs, window_qc = make_event_epochs(raw, events, settings.reject_uv)
        except RuntimeError as err:
            raise RuntimeError(f"{path}: {err}") from err
    else:
        epochs, window_qc = make_windows(raw, settings.window_s, settings.overlap_s,
                                         settings.reject_uv)
    if len(epochs) == 0:
        raise RecordingExcluded(path, "all_windows_rejected", "every epoch was rejected. Raise "
                                "eeg.reject_uv or check the recording's amplitude units.")
    qc |= window_qc
    raw.save(out_raw, overwrite=True, verbose="error")
    epochs.save(out_epochs, overwrite=True, verbose="error")
    for out in (out_raw, out_epochs):
        write_sidecar(out, sources=[path], parameters=settings.to_dict(), qc=qc)
    if out_figure:
        from brainrep.eeg.figures import recording_psd_figure

        recording_psd_figure(original, raw, qc, Path(path).name.split("_eeg.")[0], out_figure)
    return qc
