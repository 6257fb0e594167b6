"""The subtyping stage's figures: stability over k and subtype profiles."""

from __future__ import annotations

import pandas as pd

from brainrep.plots import clipped_error, feature_set_colour, plt, save_figure


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
    save_figure(fig, out)


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
    save_figure(fig, out)
