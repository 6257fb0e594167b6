"""The SSL stage's figures: the loss curves and the window-level probe."""

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


def probe_figure(probes: pd.DataFrame, n_classes: int, out: str) -> None:
    """The window-level probe's balanced accuracy (mean ± SD over splits) against the
    fraction of training participants labelled: each encoder frozen, and fine-tuned (dashed,
    in its colour), and the classical features; chance (1 / ``n_classes``) dotted."""
    from brainrep.predict.figures import label_efficiency_figure

    bases = list(dict.fromkeys(name.removesuffix("_finetuned") for name in probes["encoder"]))
    label_efficiency_figure(
        probes.rename(columns={"encoder": "feature_set"}).assign(chance=1 / n_classes), out,
        title=f"window-level probe: {probes['label'].iloc[0]}",
        dashed=tuple(name for name in probes["encoder"] if name.endswith("_finetuned")),
        colour=lambda name: plt.cm.tab10(bases.index(name.removesuffix("_finetuned")) % 10))
