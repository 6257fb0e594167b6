"""The SSL stage's figure: the loss curves."""

from __future__ import annotations

import pandas as pd

from brainrep.plots import plt, save_figure


def loss_figure(history: pd.DataFrame, objective: str, out: str) -> None:
    """Training and held-out-participant loss per epoch."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(history["epoch"], history["train_loss"], label="train")
    ax.plot(history["epoch"], history["val_loss"], label="held-out participants")
    ax.set(xlabel="epoch", ylabel="loss", title=f"SSL {objective}")
    ax.legend()
    save_figure(fig, out)
