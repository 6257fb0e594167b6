"""Outer splits: participant-grouped stratified k-fold, leave-site-out, folds fixed from
participants.tsv, and the check that no participant is both trained on and tested."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    LeaveOneGroupOut,
    StratifiedGroupKFold,
)

from brainrep.predict.targets import class_labels, is_continuous, quantile_strata


class LeakageError(RuntimeError):
    """A split that lets a participant (or a fitted step) see the test data."""


def make_splits(strata: np.ndarray, groups: np.ndarray, sites: np.ndarray | None,
                n_folds: int, seed: int) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Outer splits per scheme: participant-grouped k-fold stratified on ``strata``
    (:meth:`Target.strata`) and, with two sites or more, leave-site-out."""
    folds = min(n_folds, int(np.bincount(pd.factorize(strata)[0]).min()))
    schemes = {"stratified_group_kfold": list(StratifiedGroupKFold(
        folds, shuffle=True, random_state=seed).split(np.zeros(len(strata)), strata, groups))}
    if sites is not None and len(np.unique(sites)) > 1:
        schemes["leave_site_out"] = list(LeaveOneGroupOut().split(
            np.zeros(len(strata)), strata, sites))
    return schemes


def participant_folds(participants: pd.DataFrame, targets: list[str], n_folds: int,
                      seed: int) -> pd.DataFrame:
    """Outer test fold of every participant, fixed from participants.tsv before any stage
    runs, so that encoders pretrained per fold never see that fold's test participants, and
    shared by every target and feature set.

    Participants labelled for the first of ``targets`` are split participant-grouped and
    stratified on it; the others are dealt over the same folds in a seeded random order, so
    any target is scored on every participant that has it.
    """
    first = targets[0]
    labelled = participants.dropna(subset=[first])
    ids = labelled["participant_id"].to_numpy()
    column = labelled[first]
    strata = (quantile_strata(column.to_numpy(dtype=float)) if is_continuous(column)
              else class_labels(column).to_numpy())
    splits = make_splits(strata, ids, None, n_folds, seed)["stratified_group_kfold"]
    rows = [{"participant_id": p, "fold": k} for k, (_, test) in enumerate(splits)
            for p in ids[test]]
    others = participants.loc[participants[first].isna(), "participant_id"].to_numpy()
    order = np.random.default_rng(seed).permutation(len(others))
    rows += [{"participant_id": others[i], "fold": j % len(splits)}
             for j, i in enumerate(order)]
    return pd.DataFrame(rows).sort_values("participant_id", ignore_index=True)


def splits_from_folds(folds: pd.DataFrame, groups: np.ndarray):
    """Outer splits of ``groups`` (participants) from a ``participant_folds`` table; those
    without a fold are always in training."""
    fold = folds.set_index("participant_id")["fold"].reindex(groups).to_numpy()
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k))
            for k in sorted(folds["fold"].unique())]


def check_splits(splits: list[tuple[np.ndarray, np.ndarray]], groups: np.ndarray) -> None:
    """Refuse any split where a participant has rows on both sides."""
    for fold, (train, test) in enumerate(splits):
        shared = set(groups[train]) & set(groups[test])
        if shared:
            raise LeakageError(f"fold {fold}: participants {sorted(shared)[:5]} are in both the "
                               "training and the test set. Split by participant.")


def stratified_subset(strata: np.ndarray, fraction: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Indices of a random ``fraction`` of ``strata`` with every stratum kept (at least 2
    each)."""
    keep = []
    for label in np.unique(strata):
        members = np.flatnonzero(strata == label)
        n = max(2, int(round(fraction * len(members))))
        keep.append(rng.choice(members, size=min(n, len(members)), replace=False))
    return np.sort(np.concatenate(keep))
