"""The prediction stage's figures: metrics with intervals, out-of-fold predictions and the
label-efficiency curve."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from brainrep.plots import clipped_error, feature_set_colour, plt, save_figure


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
    save_figure(fig, out)


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
    save_figure(fig, out)


def label_efficiency_figure(curve: pd.DataFrame, out: str, title: str = "label efficiency",
                            dashed: tuple[str, ...] = ("random_", "confounds"),
                            colour: Callable[[str], object] = feature_set_colour) -> None:
    """The primary metric (mean ± SD over repeats, clipped to its range) against the fraction
    of labelled training participants, per feature set (in its ``colour``; those starting
    with ``dashed`` dashed); chance dotted."""
    metric = curve["metric"].iloc[0]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for name, rows in curve.groupby("feature_set", sort=False):
        ax.errorbar(rows["fraction"], rows["mean"], capsize=2, marker="o", label=name,
                    yerr=clipped_error(rows["mean"], rows["mean"] - rows["sd"],
                                       rows["mean"] + rows["sd"], metric),
                    color=colour(name), ls="--" if name.startswith(dashed) else "-")
    ax.axhline(curve["chance"].iloc[0], color="k", lw=0.8, ls=":", label="chance")
    ax.set(xlabel="fraction of training participants labelled", ylabel=metric,
           title=title)
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    save_figure(fig, out)
