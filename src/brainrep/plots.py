"""What every stage's figures share (matplotlib, non-interactive backend): the colour of
each feature set, interval clipping and saving. Each stage draws its own figures in its
``figures`` module."""

from __future__ import annotations

import zlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

#: Feature sets in a fixed order: each keeps its colour in every figure of every run.
FEATURE_SETS = ("confounds", "eeg_bandpower", "eeg_riemann", "fmri_connectivity", "fmri_tangent",
                "fmri_states", "ssl_eeg", "random_eeg", "crossmodal_eeg", "ssl_fmri",
                "random_fmri", "crossmodal_fmri", "foundation_eeg", "ssl_eeg_finetuned",
                "random_eeg_finetuned", "ssl_fmri_finetuned", "random_fmri_finetuned",
                "crossmodal_eeg_finetuned", "crossmodal_fmri_finetuned", "foundation_eeg_finetuned")
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


def save_figure(fig, path: str) -> None:
    """Lay out, write at 110 dpi and close."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
