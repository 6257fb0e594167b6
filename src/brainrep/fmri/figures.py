"""The fMRI stage's figure: group-mean connectivity and QC-FC."""

from __future__ import annotations

import numpy as np
import pandas as pd

from brainrep.plots import plt, save_figure


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
    save_figure(fig, out)
