"""Beyond one score per feature set: the label-efficiency curve, the site probe and the
confound-only baseline's table."""

from __future__ import annotations

import logging
from collections.abc import Collection

import numpy as np
import pandas as pd
from sklearn.metrics import (
    balanced_accuracy_score,
)

from brainrep.predict.crossval import (
    Sample,
    cross_validate,
    per_fold_scores,
    predicted,
    sample,
    score_key,
)
from brainrep.predict.models import FOLD_COLUMN
from brainrep.predict.settings import PredictionSettings
from brainrep.predict.splits import (
    check_splits,
    make_splits,
    splits_from_folds,
    stratified_subset,
)


def label_efficiency(features: dict[str, pd.DataFrame], participants: pd.DataFrame,
                     target: str, *, settings: PredictionSettings,
                     folds: pd.DataFrame | None = None, n_jobs: int = 1,
                     among: Collection[str] | None = None,
                     scores_seen: dict[tuple, np.ndarray] | None = None) -> pd.DataFrame:
    """The primary metric when only a fraction of each training fold's participants keep
    their label (participants as in :func:`~brainrep.predict.evaluate`).

    The outer participant-grouped splits and their test sets stay fixed; inside every training
    fold a random subset (each of ``settings.label_fractions``, stratified on the target
    within site, two or more participants per cell) is kept, ``settings.label_repeats``
    times, and every
    fitted step (deconfounding and ComBat included, as in :func:`evaluate`) sees that subset
    only. One row per feature set x fraction: mean and SD over repeats of the fold mean;
    ``n_failed`` counts repeats whose subset ComBat could not be fitted on (logged). Out-of-
    fold scores are memoized in ``scores_seen`` (by :func:`score_key`): repeats with the same
    subsets (every repeat of fraction 1) are computed once, and a subset that is every
    training fold whole takes :func:`~brainrep.predict.evaluate`'s scores when it put them
    there. The tangent space's eigendecompositions run in ``n_jobs`` threads
    (:func:`fold_designs`).
    """
    seed, confounds, combat = settings.seed, settings.deconfound, settings.combat
    fractions, n_repeats = settings.label_fractions, settings.label_repeats
    outer_folds = settings.outer_folds
    scores_seen = {} if scores_seen is None else scores_seen
    data = sample(features, participants, target, settings.positive_class,
                  settings.site_column, confounds, combat, among)
    target_, y, groups = data.target, data.y, np.asarray(data.participants)
    strata = target_.strata(y)
    splits = (splits_from_folds(folds, groups) if folds is not None else
              make_splits(strata, groups, None, outer_folds, seed)["stratified_group_kfold"])
    check_splits(splits, groups)
    rng = np.random.default_rng(seed)
    # subsets keep every class (or quintile) within every site: two or more of each
    cells = strata if data.sites is None else np.char.add(
        np.char.add(strata.astype(str), "@"), data.sites.astype(str))
    subsets = {(f, r, k): train[stratified_subset(cells[train], f, rng)]
               for f in fractions for r in range(n_repeats)
               for k, (train, _) in enumerate(splits)}
    rows = []
    for name, frame in features.items():
        for fraction in fractions:
            repeats = [_subset_score(data, frame, [(subsets[fraction, repeat, k], test)
                                                   for k, (_, test) in enumerate(splits)],
                                     settings, name, fraction, n_jobs, scores_seen)
                       for repeat in range(n_repeats)]
            sizes = [len(subsets[fraction, r, k]) for r in range(n_repeats)
                     for k in range(len(splits))]
            rows.append({"target": target, "feature_set": name, "fraction": fraction,
                         "n_train_labelled": round(float(np.mean(sizes)), 1),
                         "metric": target_.primary, "mean": np.nanmean(repeats),
                         "sd": np.nanstd(repeats), "n_failed": int(np.isnan(repeats).sum()),
                         "chance": target_.chance(target_.primary, y, splits),
                         "n_repeats": n_repeats})
    return pd.DataFrame(rows)


def _subset_score(data: Sample, frame: pd.DataFrame, kept, settings: PredictionSettings,
                  name: str, fraction: float, n_jobs: int,
                  scores_seen: dict[tuple, np.ndarray]) -> float:
    """Fold mean of the primary metric with only the ``kept`` training rows of each split
    (the out-of-fold scores taken from, or added to, ``scores_seen``); NaN (logged) where
    ComBat cannot be fitted on a very small labelled subset."""
    key = score_key(name, data, kept, settings.combat)
    try:
        if key not in scores_seen:
            (scores_seen[key],) = cross_validate(
                data.designs(frame, kept, settings.combat, n_jobs), data.y, kept,
                data.target, settings.model, settings.inner_folds, settings.seed,
                consume=True)
    except ValueError as err:
        logging.warning("label efficiency, %s at %g: %s", name, fraction, err)
        return np.nan
    return np.nanmean(per_fold_scores(data.y, scores_seen[key], kept,
                                      data.target)[data.target.primary])


def site_probe(features: dict[str, pd.DataFrame], participants: pd.DataFrame,
               *, settings: PredictionSettings, folds: pd.DataFrame | None = None,
               n_jobs: int = 1) -> pd.DataFrame:
    """How well each feature set predicts acquisition site (balanced accuracy, chance = 1/k),
    after the same deconfounding and ComBat as :func:`evaluate` (fitted in training folds).

    Tables embedded per fold are probed on their pretraining ``folds``; ``n_jobs`` threads
    as in :func:`fold_designs`."""
    site_column, model, seed = settings.site_column, settings.model, settings.seed
    n_folds, inner_folds = settings.outer_folds, settings.inner_folds
    confounds, combat = settings.deconfound, settings.combat
    table = participants.dropna(subset=[site_column])
    site_values = sorted(table[site_column].astype(str).unique())
    if len(site_values) < 2:
        return pd.DataFrame()
    site_labels = table.assign(**{site_column: table[site_column].astype(str)})
    positive = {site_column: site_values[-1]}
    rows = []
    for name, frame in features.items():
        data = sample({name: frame}, site_labels, site_column, positive, site_column,
                      confounds, combat)
        groups = np.asarray(data.participants)
        splits = (splits_from_folds(folds, groups) if FOLD_COLUMN in frame else
                  make_splits(data.y, groups, None, n_folds, seed)["stratified_group_kfold"])
        (score,) = cross_validate(data.designs(frame, splits, combat, n_jobs), data.y, splits,
                                  data.target, model, inner_folds, seed, consume=True)
        rows.append({"target": site_column, "cv_scheme": "stratified_group_kfold",
                     "feature_set": name, "model": model, "metric": "balanced_accuracy",
                     "mean": balanced_accuracy_score(data.y, predicted(score, data.target)),
                     "chance": 1 / len(site_values), "n_participants": len(data.y),
                     "deconfound": ";".join(confounds) or "none", "combat": combat,
                     "note": ("after ComBat, which harmonizes each test participant with its "
                              "true site: shows site information ComBat left, not how the "
                              "features would transfer to an unseen site (leave-site-out "
                              "does)") if combat else "n/a"})
    return pd.DataFrame(rows)


def confound_table(participants: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Confound-only features (numeric as is, categorical one-hot); rows with gaps dropped."""
    missing = [c for c in columns if c not in participants]
    if missing:
        raise KeyError(f"participants.tsv has no column(s) {missing}; fix downstream.confounds")
    table = participants[["participant_id", *columns]].dropna()
    return pd.get_dummies(table, columns=[c for c in columns
                                          if not pd.api.types.is_numeric_dtype(table[c])],
                          drop_first=True, dtype=float)
