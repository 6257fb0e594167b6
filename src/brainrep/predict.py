"""Honest prediction: participant-grouped nested CV, site-aware permutation tests, baselines.

Every fitted step (scaling, the classifier and its hyper-parameters) lives in a scikit-learn
pipeline that is fitted on the training folds only. Splits are saved and checked so that no
participant is ever both trained on and tested.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    LeaveOneGroupOut,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

METRICS = ("balanced_accuracy", "auroc", "auc_pr")
# Models tuned by an inner grid search: estimator and its grid.
TUNED = {
    "logistic_regression": (LogisticRegression(max_iter=2000, class_weight="balanced"),
                            {"logisticregression__C": np.logspace(-3, 1, 5)}),
    "linear_svm": (LinearSVC(class_weight="balanced", max_iter=20000),
                   {"linearsvc__C": np.logspace(-4, 0, 5)}),
}
SPD_PREFIX = "cov__"  # feature tables of SPD matrices (upper triangle with diagonal)
FOLD_COLUMN = "encoder_fold"  # feature tables from encoders pretrained per outer fold


class TangentSpaceFeatures(BaseEstimator, TransformerMixin):
    """Upper-triangle SPD matrices -> Riemannian tangent-space vectors (pyriemann).

    The reference point (Riemannian mean) is fitted on the training rows only, so the
    projection belongs inside the cross-validated pipeline. The last ``n_passthrough``
    columns (nuisance variables for :class:`NuisanceRemoval`) pass through unchanged.
    """

    def __init__(self, n_passthrough: int = 0):
        self.n_passthrough = n_passthrough

    def fit(self, X, y=None):
        from pyriemann.tangentspace import TangentSpace

        self.tangent_ = TangentSpace(metric="riemann").fit(self._matrices(X))
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=float)
        return np.hstack([self.tangent_.transform(self._matrices(X)),
                          X[:, X.shape[1] - self.n_passthrough:]])

    def _matrices(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=float)[:, :X.shape[1] - self.n_passthrough]
        n = int((np.sqrt(8 * X.shape[1] + 1) - 1) / 2)
        matrices = np.zeros((len(X), n, n))
        upper = np.triu_indices(n)
        matrices[:, upper[0], upper[1]] = X
        return matrices + np.triu(matrices, 1).transpose(0, 2, 1)


class NuisanceRemoval(BaseEstimator, TransformerMixin):
    """ComBat across sites and/or regression of confounds, fitted on training rows only.

    X is ``[features | site code | confounds]`` with ``n_nuisance`` = 1 + the number of
    confound columns; the output is the cleaned features. ComBat (neuroHarmonize, empirical
    Bayes) keeps the confounds' effects; the regression then removes them (the training
    mean is kept). A site absent from training cannot be harmonized: leave-site-out folds
    use ``combat=False``.
    """

    def __init__(self, n_nuisance: int = 1, combat: bool = False, deconfound: bool = True):
        self.n_nuisance = n_nuisance
        self.combat = combat
        self.deconfound = deconfound

    def _split(self, X):
        X = np.asarray(X, dtype=float)
        features, nuisance = X[:, :-self.n_nuisance], X[:, -self.n_nuisance:]
        covariates = pd.DataFrame(nuisance[:, 1:], columns=[f"c{i}" for i in
                                                            range(nuisance.shape[1] - 1)])
        covariates.insert(0, "SITE", [f"site{int(code)}" for code in nuisance[:, 0]])
        return features, covariates

    def fit(self, X, y=None):
        from sklearn.linear_model import LinearRegression

        features, covariates = self._split(X)
        if self.combat:
            from neuroHarmonize import harmonizationLearn

            self.combat_, features = harmonizationLearn(features.copy(), covariates)
        confounds = covariates.drop(columns="SITE").to_numpy()
        self.regression_ = (LinearRegression().fit(confounds, features)
                            if self.deconfound and confounds.shape[1] else None)
        return self

    def transform(self, X):
        features, covariates = self._split(X)
        if self.combat:
            from neuroHarmonize import harmonizationApply

            features = harmonizationApply(features.copy(), covariates, self.combat_)
        if self.regression_ is not None:
            confounds = covariates.drop(columns="SITE").to_numpy()
            features = features - self.regression_.predict(confounds) \
                + self.regression_.intercept_
        return features


def nuisance_design(participants: pd.DataFrame, site_column: str | None,
                    confounds: list[str]) -> pd.DataFrame:
    """Site code and confounds (categorical one-hot) per participant, rows with gaps dropped;
    the block :class:`NuisanceRemoval` reads."""
    columns = [c for c in [site_column, *confounds] if c]
    missing = [c for c in columns if c not in participants]
    if missing:
        raise KeyError(f"participants.tsv has no column(s) {missing}; fix "
                       "downstream.deconfound or downstream.site_column")
    table = participants.set_index("participant_id")[columns].dropna()
    design = pd.DataFrame({"site_code": pd.factorize(table[site_column])[0] if site_column
                           else 0}, index=table.index)
    if confounds:
        design = design.join(pd.get_dummies(table[list(confounds)], drop_first=True,
                                            dtype=float))
    return design.astype(float)


class LeakageError(RuntimeError):
    """A split that lets a participant (or a fitted step) see the test data."""


def is_spd(frame: pd.DataFrame) -> bool:
    """Whether a feature table holds SPD matrices (columns ``cov__<a>__<b>``)."""
    return all(c.startswith(SPD_PREFIX) for c in frame.columns
               if c not in ("participant_id", FOLD_COLUMN))


def build_model(name: str, inner_folds: int, seed: int, spd: bool = False,
                n_nuisance: int = 0, combat: bool = False):
    """A tuned linear classifier whose every fitted step sees the training fold only.

    ``ridge``: standardize + ridge classifier, alpha tuned by exact leave-one-out inside the
    training fold (fast enough for permutation tests). ``logistic_regression``: standardize +
    L2 logistic regression, C tuned by inner stratified k-fold on balanced accuracy.
    ``linear_svm``: standardize + linear SVM, C tuned likewise.
    ``spd``: the features are SPD matrices, projected to the tangent space first.
    ``n_nuisance`` > 0: the last columns are a :func:`nuisance_design` block, removed by
    :class:`NuisanceRemoval` (``combat`` adds ComBat across sites).
    """
    first = [TangentSpaceFeatures(n_nuisance)] if spd else []
    if n_nuisance:
        first.append(NuisanceRemoval(n_nuisance, combat=combat))
    if name in TUNED:
        estimator, grid = TUNED[name]
        return GridSearchCV(
            make_pipeline(*first, StandardScaler(), clone(estimator)),
            grid, cv=StratifiedKFold(inner_folds, shuffle=True, random_state=seed),
            scoring="balanced_accuracy")
    if name == "ridge":
        return make_pipeline(*first, StandardScaler(), RidgeClassifierCV(
            alphas=np.logspace(-2, 4, 7), class_weight="balanced"))
    raise ValueError(f"unknown model {name!r}; choose 'ridge', {' or '.join(map(repr, TUNED))}")


def make_splits(y: np.ndarray, groups: np.ndarray, sites: np.ndarray | None, n_folds: int,
                seed: int) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Outer splits per scheme: participant-grouped stratified k-fold and leave-site-out."""
    folds = min(n_folds, int(np.bincount(pd.factorize(y)[0]).min()))
    schemes = {"stratified_group_kfold": list(StratifiedGroupKFold(
        folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))}
    if sites is not None and len(np.unique(sites)) > 1:
        schemes["leave_site_out"] = list(LeaveOneGroupOut().split(np.zeros(len(y)), y, sites))
    return schemes


def participant_folds(participants: pd.DataFrame, target: str, n_folds: int,
                      seed: int) -> pd.DataFrame:
    """Outer test fold of every participant labelled for ``target`` (participant-grouped,
    stratified), fixed from participants.tsv before any stage runs, so that encoders
    pretrained per fold never see that fold's test participants. Unlabelled participants
    get no fold: they are never tested."""
    labelled = participants.dropna(subset=[target])
    ids = labelled["participant_id"].to_numpy()
    splits = make_splits(labelled[target].astype(str).to_numpy(), ids, None, n_folds,
                         seed)["stratified_group_kfold"]
    rows = [{"participant_id": p, "fold": k} for k, (_, test) in enumerate(splits)
            for p in ids[test]]
    return pd.DataFrame(rows).sort_values("participant_id", ignore_index=True)


def splits_from_folds(folds: pd.DataFrame, groups: np.ndarray):
    """Outer splits of ``groups`` (participants) from a ``participant_folds`` table; those
    without a fold are always in training."""
    fold = folds.set_index("participant_id")["fold"].reindex(groups).to_numpy()
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k))
            for k in sorted(folds["fold"].unique())]


def design(frame: pd.DataFrame, participants: list[str]) -> np.ndarray | list[np.ndarray]:
    """Feature matrix of ``participants`` in order; for a table embedded by one encoder per
    outer fold (column ``encoder_fold``), one matrix per fold, in fold order."""
    if FOLD_COLUMN not in frame:
        return frame.set_index("participant_id").loc[participants].to_numpy(dtype=float)
    return [rows.drop(columns=FOLD_COLUMN).set_index("participant_id").loc[participants]
            .to_numpy(dtype=float) for _, rows in frame.groupby(FOLD_COLUMN, sort=True)]


def with_nuisance(X: np.ndarray | list[np.ndarray], nuisance: pd.DataFrame | None,
                  participants: list[str]) -> np.ndarray | list[np.ndarray]:
    """Append the nuisance block of ``participants`` to X (or to each per-fold X)."""
    if nuisance is None:
        return X
    block = nuisance.loc[participants].to_numpy()
    if isinstance(X, list):
        return [np.hstack([x, block]) for x in X]
    return np.hstack([X, block])


def check_splits(splits: list[tuple[np.ndarray, np.ndarray]], groups: np.ndarray) -> None:
    """Refuse any split where a participant has rows on both sides."""
    for fold, (train, test) in enumerate(splits):
        shared = set(groups[train]) & set(groups[test])
        if shared:
            raise LeakageError(f"fold {fold}: participants {sorted(shared)[:5]} are in both the "
                               "training and the test set. Split by participant.")


def _fold_scores(y_true: np.ndarray, score: np.ndarray, positive: str) -> dict[str, float]:
    """Metrics of decision scores (> 0 predicts ``positive``)."""
    y = (y_true == positive).astype(int)
    predicted = (score > 0).astype(int)
    if len(np.unique(y)) < 2:
        return {"balanced_accuracy": float(np.mean(predicted == y)), "auroc": np.nan,
                "auc_pr": np.nan}
    return {"balanced_accuracy": balanced_accuracy_score(y, predicted),
            "auroc": roc_auc_score(y, score), "auc_pr": average_precision_score(y, score)}


def cross_validate(X: np.ndarray, y: np.ndarray, splits, positive: str, model: str,
                   inner_folds: int, seed: int, spd: bool = False, n_nuisance: int = 0,
                   combat: bool = False) -> np.ndarray:
    """Out-of-fold decision score for ``positive`` (> 0 predicts it) for every row.

    ``X`` is one matrix, or one per split (features from an encoder pretrained per fold).
    """
    if isinstance(X, list) and len(X) != len(splits):
        raise LeakageError(f"features come from {len(X)} per-fold encoders but there are "
                           f"{len(splits)} splits; they must be the pretraining folds")
    score = np.full(len(y), np.nan)
    for k, (train, test) in enumerate(splits):
        Xk = X[k] if isinstance(X, list) else X
        fitted = build_model(model, inner_folds, seed, spd, n_nuisance, combat).fit(
            Xk[train], y[train])
        sign = 1.0 if fitted.classes_[1] == positive else -1.0
        score[test] = sign * fitted.decision_function(Xk[test])
    return score


def _summaries(y, score, splits, positive) -> dict[str, list[float]]:
    per_fold = [_fold_scores(y[test], score[test], positive) for _, test in splits]
    return {m: [f[m] for f in per_fold] for m in METRICS}


def permute_within(y: np.ndarray, blocks: np.ndarray | None, rng: np.random.Generator):
    """Label permutation that keeps each site's label counts (exchangeability within site)."""
    permuted = y.copy()
    for block in np.unique(blocks) if blocks is not None else [None]:
        idx = np.flatnonzero(blocks == block) if block is not None else np.arange(len(y))
        permuted[idx] = y[rng.permutation(idx)]
    return permuted


def bootstrap_ci(y: np.ndarray, score: np.ndarray, positive: str, n_boot: int,
                 seed: int) -> dict[str, tuple[float, float]]:
    """95 % percentile intervals of pooled out-of-fold metrics, resampling participants."""
    rng = np.random.default_rng(seed)
    draws = {m: [] for m in METRICS}
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) < 2:
            continue
        for metric, value in _fold_scores(y[idx], score[idx], positive).items():
            draws[metric].append(value)
    return {m: tuple(np.nanpercentile(v, [2.5, 97.5])) if v else (np.nan, np.nan)
            for m, v in draws.items()}


def evaluate(features: dict[str, pd.DataFrame], participants: pd.DataFrame, target: str,
             positive: str, site_column: str | None, model: str, outer_folds: int,
             inner_folds: int, n_permutations: int, n_bootstrap: int, seed: int,
             folds: pd.DataFrame | None = None, confounds: list[str] = (),
             combat: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Evaluate every feature set on the same participants for one binary target.

    ``positive`` is the class whose probability is scored (AUROC, AUC-PR). ``folds``
    (:func:`participant_folds`) fixes the participant-grouped outer folds; it is required for
    feature tables embedded per fold, which leave-site-out then skips. ``confounds``
    (participants.tsv columns) are regressed out of the features and ``combat`` harmonizes
    sites (ComBat), both inside each training fold (:class:`NuisanceRemoval`); ComBat is
    off in leave-site-out, where the test site is never seen in training.

    Returns the tidy metrics table (one row per scheme x feature set x metric), the
    out-of-fold predictions and the splits.
    """
    if target not in participants:
        raise KeyError(f"participants.tsv has no column {target!r}; set downstream.targets to "
                       f"one of {sorted(participants.columns)}")
    labelled = participants.dropna(subset=[target]).set_index("participant_id")
    if combat and not site_column:
        raise ValueError("downstream.combat needs downstream.site_column")
    nuisance = (nuisance_design(participants, site_column, list(confounds))
                if confounds or combat else None)
    common = sorted(set(labelled.index).intersection(
        *(set(f["participant_id"]) for f in features.values()),
        *([set(nuisance.index)] if nuisance is not None else [])))
    y = labelled.loc[common, target].astype(str).to_numpy()
    classes = sorted(np.unique(y))
    if len(classes) != 2:
        raise ValueError(f"target {target!r} has classes {classes}; the harness handles binary "
                         "targets for now.")
    if positive not in classes:
        raise ValueError(f"downstream.positive_class {positive!r} is not a value of {target!r} "
                         f"({classes}). Set it to one of them.")
    groups = np.asarray(common)
    sites = labelled.loc[common, site_column].astype(str).to_numpy() if site_column else None
    schemes = make_splits(y, groups, sites, outer_folds, seed)
    if folds is not None:
        schemes["stratified_group_kfold"] = splits_from_folds(folds, groups)
    rng = np.random.default_rng(seed)
    metric_rows, prediction_rows, split_rows = [], [], []
    for scheme, splits in schemes.items():
        check_splits(splits, groups)
        for fold, (_, test) in enumerate(splits):
            split_rows += [{"cv_scheme": scheme, "fold": fold, "participant_id": p,
                            "set": "test"} for p in groups[test]]
        blocks = sites if scheme == "stratified_group_kfold" else None
        permutations = [permute_within(y, blocks, rng) for _ in range(
            n_permutations if scheme == "stratified_group_kfold" else 0)]
        for name, frame in features.items():
            if FOLD_COLUMN in frame and scheme != "stratified_group_kfold":
                continue  # its encoders were pretrained for the participant-grouped folds
            X = with_nuisance(design(frame, common), nuisance, common)
            options = {"spd": is_spd(frame),
                       "n_nuisance": 0 if nuisance is None else nuisance.shape[1],
                       "combat": combat and scheme != "leave_site_out"}
            score = cross_validate(X, y, splits, positive, model, inner_folds, seed, **options)
            observed = _summaries(y, score, splits, positive)
            null = [np.nanmean(_summaries(y_perm, cross_validate(
                X, y_perm, splits, positive, model, inner_folds, seed, **options), splits,
                positive)["auroc"]) for y_perm in permutations]
            ci = bootstrap_ci(y, score, positive, n_bootstrap, seed)
            for metric, values in observed.items():
                p_value = (np.nan if metric != "auroc" or not null else
                           (1 + np.sum(np.array(null) >= np.nanmean(values))) / (1 + len(null)))
                metric_rows.append({
                    "target": target, "positive_class": positive, "cv_scheme": scheme,
                    "feature_set": name, "model": model, "metric": metric,
                    "mean": np.nanmean(values), "sd": np.nanstd(values),
                    "ci_low": ci[metric][0], "ci_high": ci[metric][1], "p_value": p_value,
                    "n_permutations": len(null), "n_participants": len(y),
                    "n_folds": len(splits), "deconfound": ";".join(confounds) or "none",
                    "combat": options["combat"]})
            prediction_rows += [{"cv_scheme": scheme, "feature_set": name,
                                 "participant_id": p, "y_true": t, "score": s}
                                for p, t, s in zip(groups, y, score, strict=True)]
    return pd.DataFrame(metric_rows), pd.DataFrame(prediction_rows), pd.DataFrame(split_rows)


def label_efficiency(features: dict[str, pd.DataFrame], participants: pd.DataFrame,
                     target: str, positive: str, model: str, outer_folds: int,
                     inner_folds: int, fractions: list[float], n_repeats: int,
                     seed: int, folds: pd.DataFrame | None = None) -> pd.DataFrame:
    """AUROC when only a fraction of each training fold's participants keep their label.

    The outer participant-grouped splits and their test sets stay fixed; inside every training
    fold a stratified random subset (``fraction``) is kept, ``n_repeats`` times. One row per
    feature set x fraction: mean and SD of the fold-mean AUROC over repeats.
    """
    labelled = participants.dropna(subset=[target]).set_index("participant_id")
    common = sorted(set(labelled.index).intersection(*(set(f["participant_id"])
                                                       for f in features.values())))
    y = labelled.loc[common, target].astype(str).to_numpy()
    groups = np.asarray(common)
    splits = (splits_from_folds(folds, groups) if folds is not None else
              make_splits(y, groups, None, outer_folds, seed)["stratified_group_kfold"])
    check_splits(splits, groups)
    rng = np.random.default_rng(seed)
    subsets = {(f, r, k): _stratified_subset(y[train], f, rng)
               for f in fractions for r in range(n_repeats)
               for k, (train, _) in enumerate(splits)}
    rows = []
    for name, frame in features.items():
        X = design(frame, common)
        for fraction in fractions:
            repeats = []
            for repeat in range(n_repeats):
                kept = [(train[subsets[fraction, repeat, k]], test)
                        for k, (train, test) in enumerate(splits)]
                score = cross_validate(X, y, kept, positive, model, inner_folds, seed,
                                       is_spd(frame))
                repeats.append(np.nanmean(_summaries(y, score, kept, positive)["auroc"]))
            rows.append({"target": target, "feature_set": name, "fraction": fraction,
                         "n_train_labelled": int(round(fraction * len(y) * (1 - 1 / len(splits)))),
                         "metric": "auroc", "mean": np.mean(repeats), "sd": np.std(repeats),
                         "n_repeats": n_repeats})
    return pd.DataFrame(rows)


def _stratified_subset(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of a random ``fraction`` of ``y`` with every class kept (at least 2 each)."""
    keep = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        n = max(2, int(round(fraction * len(members))))
        keep.append(rng.choice(members, size=min(n, len(members)), replace=False))
    return np.sort(np.concatenate(keep))


def site_probe(features: dict[str, pd.DataFrame], participants: pd.DataFrame,
               site_column: str, model: str, n_folds: int, inner_folds: int,
               seed: int, folds: pd.DataFrame | None = None) -> pd.DataFrame:
    """How well each feature set predicts acquisition site (balanced accuracy, chance = 1/k).

    Tables embedded per fold are probed on their pretraining ``folds``."""
    table = participants.dropna(subset=[site_column]).set_index("participant_id")
    rows = []
    for name, frame in features.items():
        ids = sorted(set(frame["participant_id"]) & set(table.index))
        y = table.loc[ids, site_column].astype(str).to_numpy()
        if len(np.unique(y)) < 2:
            continue
        X = design(frame, ids)
        splits = (splits_from_folds(folds, np.asarray(ids)) if isinstance(X, list) else
                  make_splits(y, np.asarray(ids), None, n_folds, seed)["stratified_group_kfold"])
        predicted = np.empty(len(y), dtype=object)
        for k, (train, test) in enumerate(splits):
            Xk = X[k] if isinstance(X, list) else X
            predicted[test] = build_model(model, inner_folds, seed, is_spd(frame)).fit(
                Xk[train], y[train]).predict(Xk[test])
        rows.append({"target": site_column, "cv_scheme": "stratified_group_kfold",
                     "feature_set": name, "model": model, "metric": "balanced_accuracy",
                     "mean": balanced_accuracy_score(y, predicted.astype(str)),
                     "chance": 1 / len(np.unique(y)), "n_participants": len(y)})
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
