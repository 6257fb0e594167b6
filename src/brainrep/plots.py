"""Figures for the report (matplotlib, non-interactive backend)."""

from __future__ import annotations

import json
import zlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.signal import welch  # noqa: E402

from brainrep.io import sidecar_path  # noqa: E402

#: Feature sets in a fixed order: each keeps its colour in every figure of every run.
FEATURE_SETS = ("confounds", "eeg_bandpower", "eeg_riemann", "fmri_connectivity", "fmri_tangent",
                "fmri_states", "ssl_eeg", "random_eeg", "crossmodal_eeg", "ssl_fmri",
                "random_fmri", "crossmodal_fmri")
#: The range each metric can take: intervals are clipped to it.
METRIC_RANGE = {"auroc": (0.0, 1.0), "balanced_accuracy": (0.0, 1.0), "auc_pr": (0.0, 1.0),
                "pearson_r": (-1.0, 1.0), "r2": (-np.inf, 1.0), "mae": (0.0, np.inf),
                "bootstrap_ari": (-1.0, 1.0)}


def feature_set_colour(name: str):
    """The colour of a feature set: tab20 in :data:`FEATURE_SETS` order, tab20b by a stable
    hash of the name for any other."""
    if name in FEATURE_SETS:
        return plt.cm.tab20(FEATURE_SETS.index(name) / 19.999)
    return plt.cm.tab20b((zlib.crc32(name.encode()) % 20) / 19.999)


def clipped_error(centre, low, high, metric: str) -> np.ndarray:
    """Asymmetric error bars (2, n) from ``centre`` to ``low``/``high``, clipped to the
    range of ``metric``."""
    lo, hi = METRIC_RANGE.get(metric, (-np.inf, np.inf))
    centre = np.asarray(centre, dtype=float)
    return np.stack([centre - np.clip(low, lo, hi), np.clip(high, lo, hi) - centre]).clip(0)


def _save(fig, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    _save(fig, out)


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
    _save(fig, out)


def connectivity_figure(mean: np.ndarray, qcfc: pd.DataFrame | None, out: str) -> None:
    """Group-mean connectivity matrix (``fmri.mean_connectivity``) and the QC-FC distribution
    (edge correlation with mean FD, where motion is known)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    image = left.imshow(mean, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    left.set_title("mean connectivity")
    fig.colorbar(image, ax=left, shrink=0.8)
    if qcfc is not None and len(qcfc):
        right.hist(qcfc["r"].dropna(), bins=30, color="C1")
        share = (qcfc["p_value"] < 0.05).mean()
        right.set_title(f"QC-FC: median |r| {qcfc['r'].abs().median():.2f}, "
                        f"{share:.0%} edges p<0.05", fontsize=9)
    else:
        right.set_title("QC-FC: no motion estimates", fontsize=9)
    right.set(xlabel="r(edge, mean FD)", ylabel="edges")
    _save(fig, out)


def loss_figure(history: pd.DataFrame, objective: str, out: str) -> None:
    """Training and held-out-participant loss per epoch."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(history["epoch"], history["train_loss"], label="train")
    ax.plot(history["epoch"], history["val_loss"], label="held-out participants")
    ax.set(xlabel="epoch", ylabel="loss", title=f"SSL {objective}")
    ax.legend()
    _save(fig, out)


def metrics_figure(metrics: pd.DataFrame, metric: str, out: str, alpha: float = 0.05) -> None:
    """``metric`` (pooled out-of-fold estimate with its bootstrap interval, clipped to the
    metric's range) per feature set and CV scheme; chance dashed, ``*`` where the
    permutation p-value is below ``alpha``."""
    primary = metrics[metrics["metric"] == metric]
    schemes = list(primary["cv_scheme"].unique())
    fig, axes = plt.subplots(1, len(schemes), figsize=(5 * len(schemes), 3.5), squeeze=False)
    for ax, scheme in zip(axes[0], schemes, strict=True):
        rows = primary[primary["cv_scheme"] == scheme]
        position = np.arange(len(rows))
        ax.barh(position, rows["estimate"],
                xerr=clipped_error(rows["estimate"], rows["ci_low"], rows["ci_high"], metric),
                color=[feature_set_colour(n) for n in rows["feature_set"]])
        ax.set_yticks(position, rows["feature_set"])
        for y, p_value in enumerate(rows["p_value"]):
            if pd.notna(p_value) and p_value < alpha:
                ax.annotate("*", (0, y), xytext=(4, -4), textcoords="offset points",
                            fontsize=12, color="k")
        ax.axvline(rows["chance"].iloc[0], color="k", ls="--", lw=1, label="chance")
        ax.set(xlabel=f"{metric} (95% CI; * p < {alpha})", title=scheme)
        ax.legend(fontsize=7, loc="lower right")
    _save(fig, out)


def predictions_figure(predictions: pd.DataFrame, task: str, positive: str | None,
                       out: str) -> None:
    """Pooled out-of-fold predictions per feature set and CV scheme: ROC curves for a binary
    target, micro-averaged one-vs-rest ROC for a multi-class one, observed against predicted
    for a continuous one."""
    from sklearn.metrics import roc_curve
    from sklearn.preprocessing import label_binarize

    schemes = list(predictions["cv_scheme"].unique())
    fig, axes = plt.subplots(1, len(schemes), figsize=(5 * len(schemes), 4.2), squeeze=False)
    for ax, scheme in zip(axes[0], schemes, strict=True):
        for name, rows in predictions[predictions["cv_scheme"] == scheme].groupby(
                "feature_set", sort=False):
            style = "--" if name.startswith(("random_", "confounds")) else "-"
            if task == "continuous":
                ax.scatter(rows["y_true"], rows["y_pred"], s=8, alpha=0.6,
                           color=feature_set_colour(name), label=name)
                continue
            if task == "binary":
                truth = (rows["y_true"].astype(str) == positive).to_numpy(dtype=int)
                score = rows["score"].to_numpy()
            else:
                columns = [c for c in rows.columns if c.startswith("score_")]
                classes = [c.removeprefix("score_") for c in columns]
                truth = label_binarize(rows["y_true"].astype(str), classes=classes).ravel()
                score = rows[columns].to_numpy().ravel()
            if len(np.unique(truth)) == 2:
                fpr, tpr, _ = roc_curve(truth, score)
                ax.plot(fpr, tpr, ls=style, color=feature_set_colour(name), label=name)
        if task == "continuous":
            ax.set(xlabel="observed", ylabel="predicted (out of fold)", title=scheme)
        else:
            ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls=":")
            ax.set(xlabel="false positive rate", ylabel="true positive rate", title=scheme)
        ax.legend(fontsize=6)
    _save(fig, out)


def label_efficiency_figure(curve: pd.DataFrame, out: str) -> None:
    """The primary metric (mean ± SD over repeats, clipped to its range) against the fraction
    of labelled training participants, per feature set; chance dotted."""
    metric = curve["metric"].iloc[0]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for name, rows in curve.groupby("feature_set", sort=False):
        ax.errorbar(rows["fraction"], rows["mean"], capsize=2, marker="o", label=name,
                    yerr=clipped_error(rows["mean"], rows["mean"] - rows["sd"],
                                       rows["mean"] + rows["sd"], metric),
                    color=feature_set_colour(name),
                    ls="--" if name.startswith(("random_", "confounds")) else "-")
    ax.axhline(curve["chance"].iloc[0], color="k", lw=0.8, ls=":", label="chance")
    ax.set(xlabel="fraction of training participants labelled", ylabel=metric,
           title="label efficiency")
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    _save(fig, out)


def stability_figure(stability: pd.DataFrame, out: str) -> None:
    """Bootstrap ARI (mean ± SD, clipped to [-1, 1]) per k for every feature set."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, rows in stability.groupby("feature_set"):
        mean, sd = rows["bootstrap_ari_mean"], rows["bootstrap_ari_sd"]
        ax.errorbar(rows["k"], mean, yerr=clipped_error(mean, mean - sd, mean + sd,
                                                         "bootstrap_ari"),
                    marker="o", label=name, capsize=3, color=feature_set_colour(name))
    ax.set(xlabel="k", ylabel="bootstrap ARI", ylim=(-0.1, 1.05), title="subtype stability")
    ax.legend(fontsize=7)
    _save(fig, out)


def profiles_figure(profiles: pd.DataFrame, out: str) -> None:
    """Heatmap per feature set of :func:`brainrep.subtype.subtype_profiles` (mean z-score
    per subtype of each check variable and of the most discriminating features)."""
    names = list(profiles["feature_set"].unique())
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 1.2 + 1.1 * len(names) + 0.3 * len(
        profiles["subtype"].unique()) * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        rows = profiles[profiles["feature_set"] == name]
        table = rows.pivot_table(index="subtype", columns="variable", values="mean_z",
                                 sort=False)
        image = ax.imshow(table.to_numpy(), cmap="RdBu_r", vmin=-1.5, vmax=1.5, aspect="auto")
        ax.set_xticks(range(table.shape[1]), table.columns, rotation=60, ha="right",
                      fontsize=6)
        counts = rows.groupby("subtype")["n"].first()
        ax.set_yticks(range(table.shape[0]), [f"{s} (n={counts[s]})" for s in table.index],
                      fontsize=7)
        ax.set_title(name, fontsize=8)
        fig.colorbar(image, ax=ax, label="mean z")
    _save(fig, out)
