"""Prediction targets: participants.tsv columns that are binary, multi-class or continuous,
with their metrics and chance levels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_CLASSES = 10  # a numeric column with more distinct values is a continuous target


METRICS = {"binary": ("balanced_accuracy", "auroc", "auc_pr"),
           "multiclass": ("balanced_accuracy", "auroc"),
           "continuous": ("r2", "mae", "pearson_r")}


PRIMARY = {"binary": "auroc", "multiclass": "balanced_accuracy", "continuous": "r2"}


@dataclass(frozen=True)
class Target:
    """A participants.tsv column to predict.

    ``task`` is ``binary``, ``multiclass`` or ``continuous``; ``classes`` orders the class
    labels (binary: the positive class, scored by AUROC and AUC-PR, last).
    """

    name: str
    task: str
    classes: tuple[str, ...] = ()

    @property
    def metrics(self) -> tuple[str, ...]:
        return METRICS[self.task]

    @property
    def primary(self) -> str:
        """The metric permutation p-values and the label-efficiency curve are computed on."""
        return PRIMARY[self.task]

    def chance(self, metric: str, y: np.ndarray, splits) -> float:
        """Mean over the outer ``splits`` of ``metric`` for an uninformative model fitted in
        each training fold: R² and MAE of predicting the training mean and median; AUC-PR,
        the positive class's share of each test fold; balanced accuracy 1/classes; AUROC
        0.5; Pearson r 0."""
        if metric in ("r2", "mae"):
            from sklearn.metrics import r2_score  # not at import: planning reads this module

            per_fold = []
            for train, test in splits:
                if metric == "r2" and len(test) > 1:
                    per_fold.append(r2_score(y[test], np.full(len(test), y[train].mean())))
                elif metric == "mae":
                    per_fold.append(np.mean(np.abs(y[test] - np.median(y[train]))))
            return float(np.mean(per_fold)) if per_fold else np.nan
        if metric == "auc_pr":
            return float(np.mean([np.mean(y[test] == self.positive) for _, test in splits]))
        return {"balanced_accuracy": 1 / max(len(self.classes), 1), "auroc": 0.5,
                "pearson_r": 0.0}[metric]

    @property
    def positive(self) -> str | None:
        return self.classes[-1] if self.task == "binary" else None

    def values(self, labelled: pd.DataFrame, participants: list[str]) -> np.ndarray:
        """The target of ``participants`` (rows of ``labelled``, indexed by participant_id)."""
        column = labelled.loc[participants, self.name]
        return (column.to_numpy(dtype=float) if self.task == "continuous"
                else class_labels(column).to_numpy())

    def strata(self, y: np.ndarray) -> np.ndarray:
        """Labels that stratified splits balance: the classes, or quintiles of a continuous
        target."""
        return quantile_strata(y) if self.task == "continuous" else y


def quantile_strata(y: np.ndarray, n_bins: int = 5) -> np.ndarray:
    """Quantile bin of every value of a continuous target, for stratified splits."""
    return pd.qcut(y, n_bins, labels=False, duplicates="drop").astype(str)


def is_continuous(column: pd.Series) -> bool:
    """A numeric column with more than ``MAX_CLASSES`` distinct values."""
    return pd.api.types.is_numeric_dtype(column) and column.nunique() > MAX_CLASSES


def class_labels(column: pd.Series) -> pd.Series:
    """Class labels as strings; whole numbers stored as floats (a column with gaps) lose
    their '.0' so that labels read like participants.tsv."""
    if pd.api.types.is_numeric_dtype(column) and np.all(np.mod(column.dropna(), 1) == 0):
        return column.astype("Int64").astype(str)
    return column.astype(str)


def resolve_target(participants: pd.DataFrame, name: str,
                   positive: str | dict[str, str] | None = None) -> Target:
    """The :class:`Target` of a participants.tsv column.

    A numeric column with more than ``MAX_CLASSES`` distinct values is continuous; any other
    column is binary or multi-class. ``positive`` (one label, or one per target name) is the
    scored class of a binary target.
    """
    if name not in participants:
        raise KeyError(f"participants.tsv has no column {name!r}; set downstream.targets to "
                       f"one of {sorted(participants.columns)}")
    values = participants[name].dropna()
    if is_continuous(values):
        return Target(name, "continuous")
    classes = sorted(class_labels(values).unique())
    if len(classes) < 2:
        raise ValueError(f"target {name!r} has {len(classes)} class(es) {classes} among "
                         "labelled participants; a target needs two or more")
    if len(classes) > 2:
        return Target(name, "multiclass", tuple(classes))
    chosen = positive.get(name) if isinstance(positive, dict) else positive
    if chosen not in classes:
        raise ValueError(f"downstream.positive_class {chosen!r} is not a value of {name!r} "
                         f"({classes}). Name the scored class, per target if they differ: "
                         f"positive_class: {{{name}: {classes[-1]}}}")
    return Target(name, "binary", tuple(c for c in classes if c != chosen) + (chosen,))
