"""EEG stage: read any MNE-BIDS format, preprocess, window, and classical band-power features."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pandas as pd
from mne_bids import BIDSPath, get_entities_from_fname, read_raw_bids
from scipy.signal import welch

from brainrep.io import write_sidecar


def read_bids_eeg(bids_root: str | Path, path: str | Path) -> mne.io.BaseRaw:
    """Load one BIDS EEG file with channel types, bad channels, montage and line frequency.

    A corrupt or truncated file raises ``RuntimeError`` naming it.
    """
    path = Path(path)
    entities = get_entities_from_fname(path.name, on_error="ignore")
    bids_path = BIDSPath(root=bids_root, datatype="eeg", suffix="eeg", extension=path.suffix,
                         **{k: v for k, v in entities.items() if v is not None})
    try:
        return read_raw_bids(bids_path, verbose="error").load_data(verbose="error")
    except Exception as err:  # MNE raises many types for corrupt or truncated files
        raise RuntimeError(f"{path}: cannot read this EEG recording ({err}). "
                           "Check that the file is complete and matches its sidecars.") from err


def line_noise_ratio(raw: mne.io.BaseRaw, line_freq: float) -> float:
    """Power at the line frequency over the median power of 1-40 Hz (1 = no line noise)."""
    psd = raw.compute_psd(fmin=1, fmax=min(line_freq + 5, raw.info["sfreq"] / 2 - 1),
                          verbose="error")
    freqs, power = psd.freqs, psd.get_data().mean(axis=0)
    at_line = power[np.argmin(np.abs(freqs - line_freq))]
    return float(at_line / np.median(power[(freqs >= 1) & (freqs <= 40)]))


def preprocess(raw: mne.io.BaseRaw, l_freq: float, h_freq: float, sfreq: float,
               reference: str, notch: bool) -> tuple[mne.io.BaseRaw, dict]:
    """Pick EEG, notch, band-pass, resample, interpolate bads, re-reference.

    Returns the cleaned raw and a QC record (bad channels, line-noise ratio, duration in s).
    """
    raw = raw.copy().pick("eeg")
    line_freq = raw.info["line_freq"]
    qc = {"bad_channels": list(raw.info["bads"]), "duration_s": raw.n_times / raw.info["sfreq"],
          "line_freq_hz": line_freq, "sfreq_raw_hz": raw.info["sfreq"]}
    if line_freq and line_freq < raw.info["sfreq"] / 2:
        qc["line_noise_ratio"] = line_noise_ratio(raw, line_freq)
        if notch:
            raw.notch_filter(np.arange(line_freq, raw.info["sfreq"] / 2, line_freq),
                             verbose="error")
    raw.filter(l_freq, h_freq, verbose="error")
    raw.resample(sfreq, verbose="error")
    if raw.info["bads"] and raw.get_montage() is not None:
        raw.interpolate_bads(reset_bads=True, verbose="error")
    raw.set_eeg_reference("average" if reference == "average" else [reference],
                          verbose="error")
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


def run_recording(bids_root: str, path: str, out_raw: str, out_epochs: str,
                  params: dict) -> dict:
    """Preprocess and window one recording; write cleaned raw, epochs and their sidecars."""
    raw, qc = preprocess(read_bids_eeg(bids_root, path), params["l_freq"], params["h_freq"],
                         params["sfreq"], params["reference"], params["notch"])
    epochs, window_qc = make_windows(raw, params["window_s"], params["overlap_s"],
                                     params["reject_uv"])
    if len(epochs) == 0:
        raise RuntimeError(f"{path}: every window was rejected. Raise eeg.reject_uv or check "
                           "the recording's amplitude units.")
    qc |= window_qc
    raw.save(out_raw, overwrite=True, verbose="error")
    epochs.save(out_epochs, overwrite=True, verbose="error")
    for out in (out_raw, out_epochs):
        write_sidecar(out, sources=[path], parameters=params, qc=qc)
    return qc


def stack_windows(epochs_files: list[str], keys: list[str], out_array: str,
                  out_table: str) -> None:
    """Concatenate every recording's windows into one float32 array (µV) and a metadata table.

    The array has shape (n_windows, n_channels, n_times); channels are the ones common to every
    recording, in the order of the first. The SSL stage reads these without MNE.
    """
    infos = [mne.read_epochs(f, preload=False, verbose="error") for f in epochs_files]
    common = [ch for ch in infos[0].ch_names if all(ch in e.ch_names for e in infos)]
    n_windows = sum(len(e) for e in infos)
    store = np.lib.format.open_memmap(out_array, mode="w+", dtype=np.float32,
                                      shape=(n_windows, len(common), len(infos[0].times)))
    rows, start = [], 0
    for key, epochs in zip(keys, infos, strict=True):
        data = epochs.get_data(picks=common, units="uV", verbose="error")
        store[start:start + len(data)] = data
        start += len(data)
        entities = dict(part.split("-", 1) for part in key.split("_"))
        for window, onset in enumerate(epochs.metadata["onset_s"]):
            rows.append({"participant_id": f"sub-{entities['sub']}",
                         "session": entities.get("ses", "n/a"), "task": entities.get("task"),
                         "run": entities.get("run", "n/a"), "window": window, "onset_s": onset})
    store.flush()
    pd.DataFrame(rows).to_csv(out_table, sep="\t", index=False)
    write_sidecar(out_array, sources=epochs_files, channels=common,
                  sfreq_hz=infos[0].info["sfreq"], units="uV")


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
