"""The EEG group stage: every recording's windows in one store, and the classical features
(log band power, channel covariances)."""

from __future__ import annotations

import mne
import numpy as np
import pandas as pd
from scipy.signal import welch

from brainrep.io import atomic_output, write_sidecar


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
