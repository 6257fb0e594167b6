"""The EEG stage's figures: power spectra of the window store and of each recording."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy.signal import welch

from brainrep.io import sidecar_path
from brainrep.plots import plt, save_figure


def eeg_psd_figure(array_path: str, table_path: str, out: str) -> None:
    """Channel-mean log PSD of every participant (thin lines) and the group median (thick)."""
    windows = np.load(array_path, mmap_mode="r")
    sfreq = json.loads(sidecar_path(array_path).read_text())["sfreq_hz"]
    table = pd.read_csv(table_path, sep="\t")
    freqs, psd = welch(windows, fs=sfreq, nperseg=min(windows.shape[-1], int(2 * sfreq)))
    shown = (freqs >= 1) & (freqs <= min(45, sfreq / 2))
    freqs = freqs[shown]
    per_participant = pd.DataFrame(np.log10(psd[..., shown].mean(axis=1))).groupby(
        table["participant_id"].to_numpy()).mean()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(freqs, per_participant.T.to_numpy(), color="0.6", lw=0.5)
    ax.plot(freqs, per_participant.median().to_numpy(), color="C0", lw=2, label="median")
    ax.set(xlabel="frequency (Hz)", ylabel="log10 power (µV²/Hz)",
           title=f"EEG spectra, {len(per_participant)} participants")
    ax.legend()
    save_figure(fig, out)


def recording_psd_figure(raw_before, raw_after, qc: dict, title: str, out: str) -> None:
    """One recording's PSD per channel before and after preprocessing, with its QC."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, raw, label in ((axes[0], raw_before, "raw"), (axes[1], raw_after, "cleaned")):
        n_fft = int(2 * raw.info["sfreq"])  # 0.5 Hz bins, averaged over 2-s segments
        psd = raw.compute_psd(fmin=1, fmax=min(60, raw.info["sfreq"] / 2), picks="eeg",
                              n_fft=n_fft, n_overlap=n_fft // 2, verbose="error")
        ax.plot(psd.freqs, 10 * np.log10(psd.get_data() * 1e12).T, lw=0.5)
        ax.set(xlabel="frequency (Hz)", title=label)
    axes[0].set_ylabel("power (dB re 1 µV²/Hz)")
    bads = ", ".join(qc["bad_channels"]) or "none"
    fig.suptitle(f"{title}: bad channels {bads}; {qc['n_windows']} epochs, "
                 f"{qc['rejected_fraction']:.0%} rejected", fontsize=9)
    save_figure(fig, out)
