"""Honest prediction: participant-grouped nested CV, site-aware permutation tests, baselines.

Targets are participants.tsv columns: binary, multi-class or continuous (:class:`Target`).
Every fitted step is fitted on the outer training folds only: the label-free steps
(tangent-space projection, deconfounding, ComBat) once per outer fold (:func:`fold_designs`,
reused by every label permutation), then the supervised pipeline (scaling and a linear model
whose hyper-parameters are tuned by an inner loop). Splits are saved and checked so that no
participant is ever both trained on and tested.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.special import softmax
from scipy.stats import pearsonr
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV, RidgeCV
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    LeaveOneGroupOut,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC, LinearSVR

MAX_CLASSES = 10  # a numeric column with more distinct values is a continuous target
METRICS = {"binary": ("balanced_accuracy", "auroc", "auc_pr"),
           "multiclass": ("balanced_accuracy", "auroc"),
           "continuous": ("r2", "mae", "pearson_r")}
PRIMARY = {"binary": "auroc", "multiclass": "balanced_accuracy", "continuous": "r2"}
RIDGE_ALPHAS = np.logspace(-2, 4, 7)
# Models tuned by an inner grid search over C: estimator per task family.
TUNED = {
    "logistic_regression": {"classifier": LogisticRegression(max_iter=2000,
                                                             class_weight="balanced")},
    "linear_svm": {"classifier": LinearSVC(class_weight="balanced", max_iter=20000),
                   "regressor": LinearSVR(max_iter=20000)},
}
C_GRID = {"logistic_regression": np.logspace(-3, 1, 5), "linear_svm": np.logspace(-4, 0, 5)}
SPD_PREFIX = "cov__"  # feature tables of SPD matrices (upper triangle with diagonal)
FOLD_COLUMN = "encoder_fold"  # feature tables from encoders pretrained per outer fold


class TangentSpaceFeatures(BaseEstimator, TransformerMixin):
    """Upper-triangle SPD matrices -> Riemannian tangent-space vectors (pyriemann).

    The reference point is fitted on the training rows only, so the projection belongs inside
    the cross-validated pipeline. It is the log-Euclidean mean (closed form, one eigen-
    decomposition per matrix; the iterative Riemannian mean takes ~7x longer for 200 parcels),
    and the map is the affine-invariant logarithm at that point. The last ``n_passthrough``
    columns (nuisance variables for :class:`NuisanceRemoval`) pass through unchanged.
    """

    def __init__(self, n_passthrough: int = 0):
        self.n_passthrough = n_passthrough

    def fit(self, X, y=None):
        from pyriemann.tangentspace import TangentSpace

        self.tangent_ = TangentSpace(metric={"mean": "logeuclid", "map": "riemann"})
        self.tangent_.fit(self._matrices(X))
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

            counts = covariates["SITE"].value_counts()
            if counts.min() < 2:
                raise ValueError(f"ComBat needs two or more participants of every site in each "
                                 f"training set; {counts.idxmin()} has {counts.min()}. Lower "
                                 "downstream.outer_folds or drop that site, or set combat: false")
            # covariates constant in this training set (one sex in a small subset) are left out
            self.combat_columns_ = ["SITE"] + [c for c in covariates.columns[1:]
                                               if covariates[c].nunique() > 1]
            try:
                self.combat_, features = harmonizationLearn(
                    features.copy(), covariates[self.combat_columns_])
            except np.linalg.LinAlgError as err:
                raise ValueError(f"ComBat cannot be fitted on these {len(features)} training "
                                 "participants: sites and covariates are collinear. Use fewer "
                                 "downstream.deconfound columns or more participants per site"
                                 ) from err
        confounds = covariates.drop(columns="SITE").to_numpy()
        self.regression_ = (LinearRegression().fit(confounds, features)
                            if self.deconfound and confounds.shape[1] else None)
        return self

    def transform(self, X):
        features, covariates = self._split(X)
        if self.combat:
            from neuroHarmonize import harmonizationApply

            features = harmonizationApply(features.copy(), covariates[self.combat_columns_],
                                          self.combat_)
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


def is_spd(frame: pd.DataFrame) -> bool:
    """Whether a feature table holds SPD matrices (columns ``cov__<a>__<b>``)."""
    return all(c.startswith(SPD_PREFIX) for c in frame.columns
               if c not in ("participant_id", FOLD_COLUMN))


def label_free_steps(spd: bool = False, n_nuisance: int = 0, combat: bool = False):
    """The steps fitted without labels: tangent-space projection of SPD features, then
    removal of the last ``n_nuisance`` columns (a :func:`nuisance_design` block) by
    :class:`NuisanceRemoval`, ComBat across sites with ``combat``. None when there are none."""
    steps = [TangentSpaceFeatures(n_nuisance)] if spd else []
    if n_nuisance:
        steps.append(NuisanceRemoval(n_nuisance, combat=combat))
    return make_pipeline(*steps) if steps else None


def build_model(name: str, task: str, inner_folds: int, seed: int):
    """A standardized linear model whose hyper-parameters are tuned inside the training data.

    ``ridge``: ridge classifier or regression, alpha tuned by exact leave-one-out (fast enough
    for permutation tests). ``logistic_regression`` (classes only) and ``linear_svm``: C tuned
    by an inner (stratified) k-fold on balanced accuracy, or R² for a continuous target.
    """
    continuous = task == "continuous"
    if name == "ridge" or (continuous and name == "logistic_regression"):
        final = (RidgeCV(alphas=RIDGE_ALPHAS) if continuous else
                 RidgeClassifierCV(alphas=RIDGE_ALPHAS, class_weight="balanced"))
        return make_pipeline(StandardScaler(), final)
    if name not in TUNED:
        raise ValueError(f"unknown model {name!r}; choose 'ridge', "
                         f"{' or '.join(map(repr, TUNED))}")
    estimator = TUNED[name]["regressor" if continuous else "classifier"]
    grid = {f"{type(estimator).__name__.lower()}__C": C_GRID[name]}
    inner = (KFold if continuous else StratifiedKFold)(inner_folds, shuffle=True,
                                                       random_state=seed)
    return GridSearchCV(make_pipeline(StandardScaler(), clone(estimator)), grid, cv=inner,
                        scoring="r2" if continuous else "balanced_accuracy")


def model_name(name: str, task: str) -> str:
    """The model :func:`build_model` fits for ``name`` on a ``task`` target."""
    return "ridge" if task == "continuous" and name == "logistic_regression" else name


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


def fold_designs(X: np.ndarray | list[np.ndarray], splits, spd: bool = False,
                 n_nuisance: int = 0, combat: bool = False
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training, test) matrices of every outer split after the :func:`label_free_steps`,
    fitted on that split's training rows. They never see labels, so every label permutation
    reuses them (the inner tuning loop sees them fitted on the whole outer training fold).

    ``X`` is one matrix, or one per split (features from an encoder pretrained per fold).
    """
    if isinstance(X, list) and len(X) != len(splits):
        raise LeakageError(f"features come from {len(X)} per-fold encoders but there are "
                           f"{len(splits)} splits; they must be the pretraining folds")
    designs = []
    for k, (train, test) in enumerate(splits):
        Xk = X[k] if isinstance(X, list) else X
        steps = label_free_steps(spd, n_nuisance, combat)
        if steps is None:
            designs.append((Xk[train], Xk[test]))
        else:
            designs.append((steps.fit_transform(Xk[train]), steps.transform(Xk[test])))
    return designs


def _decision(fitted, X: np.ndarray, target: Target) -> np.ndarray:
    """Binary: score > 0 predicts the positive class. Multi-class: one column per class of
    ``target`` (a class absent from training gets -1e6). Continuous: the prediction."""
    if target.task == "continuous":
        return fitted.predict(X)
    decision = fitted.decision_function(X)
    if decision.ndim == 1:  # two classes were seen: the score of the second
        decision = np.column_stack([-decision, decision])
    if target.task == "binary":
        return decision[:, list(fitted.classes_).index(target.positive)]
    full = np.full((len(X), len(target.classes)), -1e6)
    full[:, [target.classes.index(c) for c in fitted.classes_]] = decision
    return full


def cross_validate(designs: list[tuple[np.ndarray, np.ndarray]], y: np.ndarray, splits,
                   target: Target, model: str, inner_folds: int, seed: int) -> np.ndarray:
    """Out-of-fold decision scores (see :func:`_decision`) of every row, the model refitted
    and re-tuned on each outer training fold of :func:`fold_designs`."""
    shape = (len(y), len(target.classes)) if target.task == "multiclass" else len(y)
    score = np.full(shape, np.nan)
    for (train, test), (X_train, X_test) in zip(splits, designs, strict=True):
        fitted = build_model(model, target.task, inner_folds, seed).fit(X_train, y[train])
        score[test] = _decision(fitted, X_test, target)
    return score


def predicted(score: np.ndarray, target: Target) -> np.ndarray:
    """Predicted labels (or values) from :func:`cross_validate` scores."""
    if target.task == "continuous":
        return score
    if target.task == "binary":
        return np.where(score > 0, target.classes[1], target.classes[0])
    return np.asarray(target.classes)[np.argmax(score, axis=1)]


def scores(y_true: np.ndarray, score: np.ndarray, target: Target) -> dict[str, float]:
    """Every metric of ``target.metrics``; NaN where a subset lacks what one needs."""
    if target.task == "continuous":
        varied = len(y_true) > 2 and np.std(y_true) > 0 and np.std(score) > 0
        return {"r2": r2_score(y_true, score) if len(y_true) > 1 else np.nan,
                "mae": mean_absolute_error(y_true, score),
                "pearson_r": pearsonr(y_true, score)[0] if varied else np.nan}
    result = {"balanced_accuracy": balanced_accuracy_score(y_true, predicted(score, target))}
    if target.task == "binary":
        positive = (y_true == target.positive).astype(int)
        both = len(np.unique(positive)) == 2
        result["auroc"] = roc_auc_score(positive, score) if both else np.nan
        result["auc_pr"] = average_precision_score(positive, score) if both else np.nan
    else:
        every = set(np.unique(y_true)) == set(target.classes)
        result["auroc"] = (roc_auc_score(y_true, softmax(score, axis=1), multi_class="ovr",
                                         labels=list(target.classes)) if every else np.nan)
    return result


def _per_fold(y, score, splits, target: Target) -> dict[str, list[float]]:
    folds = [scores(y[test], score[test], target) for _, test in splits]
    return {m: [f[m] for f in folds] for m in target.metrics}


def permute_within(y: np.ndarray, blocks: np.ndarray | None, rng: np.random.Generator):
    """Label permutation that keeps each site's label counts (exchangeability within site)."""
    permuted = y.copy()
    for block in np.unique(blocks) if blocks is not None else [None]:
        idx = np.flatnonzero(blocks == block) if block is not None else np.arange(len(y))
        permuted[idx] = y[rng.permutation(idx)]
    return permuted


def bootstrap_ci(y: np.ndarray, score: np.ndarray, target: Target, n_boot: int,
                 seed: int) -> dict[str, tuple[float, float]]:
    """95 % percentile intervals of the pooled out-of-fold metrics (the ``estimate`` column
    of :func:`evaluate`), resampling participants."""
    rng = np.random.default_rng(seed)
    draws = {m: [] for m in target.metrics}
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if target.task != "continuous" and len(np.unique(y[idx])) < 2:
            continue
        for metric, value in scores(y[idx], score[idx], target).items():
            draws[metric].append(value)
    return {m: tuple(np.nanpercentile(v, [2.5, 97.5])) if np.isfinite(v).any()
            else (np.nan, np.nan) for m, v in draws.items()}


@dataclass
class Sample:
    """The participants every feature set is evaluated on, their target, sites and nuisance
    block (:func:`nuisance_design`, or None)."""

    target: Target
    participants: list[str]
    y: np.ndarray
    sites: np.ndarray | None
    nuisance: pd.DataFrame | None

    def designs(self, frame: pd.DataFrame, splits, combat: bool = False):
        """:func:`fold_designs` of one feature table on this sample's participants."""
        X = with_nuisance(design(frame, self.participants), self.nuisance, self.participants)
        return fold_designs(X, splits, is_spd(frame),
                            0 if self.nuisance is None else self.nuisance.shape[1], combat)


def sample(features: dict[str, pd.DataFrame], participants: pd.DataFrame, target: str,
           positive: str | dict[str, str] | None, site_column: str | None,
           confounds: list[str] = (), combat: bool = False) -> Sample:
    """The :class:`Sample` of participants labelled for ``target`` with every feature set
    (and, when confounds are removed or sites harmonized, every nuisance variable)."""
    resolved = resolve_target(participants, target, positive)
    if combat and not site_column:
        raise ValueError("downstream.combat needs downstream.site_column")
    nuisance = (nuisance_design(participants, site_column, list(confounds))
                if confounds or combat else None)
    labelled = participants.dropna(subset=[target]).set_index("participant_id")
    common = sorted(set(labelled.index).intersection(
        *(set(f["participant_id"]) for f in features.values()),
        *([set(nuisance.index)] if nuisance is not None else [])))
    y = resolved.values(labelled, common)
    sites = labelled.loc[common, site_column].astype(str).to_numpy() if site_column else None
    return Sample(resolved, common, y, sites, nuisance)


def evaluate(features: dict[str, pd.DataFrame], participants: pd.DataFrame, target: str,
             positive: str | dict[str, str] | None, site_column: str | None, model: str,
             outer_folds: int, inner_folds: int, n_permutations: int, n_bootstrap: int,
             seed: int, folds: pd.DataFrame | None = None, confounds: list[str] = (),
             combat: bool = False, n_jobs: int = 1
             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Evaluate every feature set on the same participants for one target.

    ``positive`` is the scored class of a binary target (:func:`resolve_target`). ``folds``
    (:func:`participant_folds`) fixes the participant-grouped outer folds; it is required for
    feature tables embedded per fold, which leave-site-out then skips. ``confounds``
    (participants.tsv columns) are regressed out of the features and ``combat`` harmonizes
    sites (ComBat), both inside each training fold (:class:`NuisanceRemoval`); ComBat is
    off in leave-site-out, where the test site is never seen in training. Labels are permuted
    within site in both schemes; the p-value is on the target's primary metric. The
    permutation refits run in ``n_jobs`` processes (the same numbers for any ``n_jobs``).

    Returns the tidy metrics table (one row per scheme x feature set x metric), the
    out-of-fold predictions and the splits.
    """
    data = sample(features, participants, target, positive, site_column, confounds, combat)
    target_, y, groups = data.target, data.y, np.asarray(data.participants)
    schemes = make_splits(target_.strata(y), groups, data.sites, outer_folds, seed)
    if folds is not None:
        schemes["stratified_group_kfold"] = splits_from_folds(folds, groups)
    rng = np.random.default_rng(seed)
    metric_rows, prediction_rows, split_rows = [], [], []
    for scheme, splits in schemes.items():
        check_splits(splits, groups)
        for fold, (_, test) in enumerate(splits):
            split_rows += [{"cv_scheme": scheme, "fold": fold, "participant_id": p,
                            "set": "test"} for p in groups[test]]
        # participants without a fixed fold (unlabelled for the target folds.tsv was made
        # from) stay in training
        tested = np.zeros(len(y), dtype=bool)
        tested[np.concatenate([test for _, test in splits])] = True
        permutations = [permute_within(y, data.sites, rng) for _ in range(n_permutations)]
        harmonized = combat and scheme != "leave_site_out"
        for name, frame in features.items():
            if FOLD_COLUMN in frame and scheme != "stratified_group_kfold":
                continue  # its encoders were pretrained for the participant-grouped folds
            designs = data.designs(frame, splits, harmonized)
            score = cross_validate(designs, y, splits, target_, model, inner_folds, seed)
            observed = _per_fold(y, score, splits, target_)
            null = Parallel(n_jobs=n_jobs)(
                delayed(_permuted_metric)(designs, y_perm, splits, target_, model,
                                          inner_folds, seed) for y_perm in permutations)
            pooled = scores(y[tested], score[tested], target_)
            ci = bootstrap_ci(y[tested], score[tested], target_, n_bootstrap, seed)
            for metric, values in observed.items():
                p_value = (np.nan if metric != target_.primary or not null else
                           (1 + np.sum(np.array(null) >= np.nanmean(values))) / (1 + len(null)))
                metric_rows.append({
                    "target": target, "task": target_.task,
                    "positive_class": target_.positive or "n/a", "cv_scheme": scheme,
                    "feature_set": name, "model": model_name(model, target_.task),
                    "metric": metric, "estimate": pooled[metric],
                    "ci_low": ci[metric][0], "ci_high": ci[metric][1],
                    "mean": np.nanmean(values), "sd": np.nanstd(values),
                    "chance": target_.chance(metric, y, splits),
                    "p_value": p_value, "n_permutations": len(null),
                    "n_participants": int(tested.sum()),
                    "n_folds": len(splits), "deconfound": ";".join(confounds) or "none",
                    "combat": harmonized})
            prediction_rows.append(_prediction_table(scheme, name, groups[tested], y[tested],
                                                     score[tested], target_))
    return (pd.DataFrame(metric_rows), pd.concat(prediction_rows, ignore_index=True),
            pd.DataFrame(split_rows))


def _permuted_metric(designs, y_perm: np.ndarray, splits, target: Target, model: str,
                     inner_folds: int, seed: int) -> float:
    """The primary metric (mean over folds) of a model refitted on permuted labels."""
    return np.nanmean(_per_fold(y_perm, cross_validate(designs, y_perm, splits, target, model,
                                                       inner_folds, seed), splits,
                                target)[target.primary])


def _prediction_table(scheme: str, name: str, groups: np.ndarray, y: np.ndarray,
                      score: np.ndarray, target: Target) -> pd.DataFrame:
    """Out-of-fold predictions, one row per participant; decision scores per class for a
    multi-class target (``score_<class>``), toward the positive class for a binary one."""
    table = pd.DataFrame({"cv_scheme": scheme, "feature_set": name, "participant_id": groups,
                          "y_true": y, "y_pred": predicted(score, target)})
    if target.task == "binary":
        table["score"] = score
    elif target.task == "multiclass":
        for i, label in enumerate(target.classes):
            table[f"score_{label}"] = score[:, i]
    return table


def label_efficiency(features: dict[str, pd.DataFrame], participants: pd.DataFrame,
                     target: str, positive: str | dict[str, str] | None, model: str,
                     outer_folds: int, inner_folds: int, fractions: list[float],
                     n_repeats: int, seed: int, folds: pd.DataFrame | None = None,
                     site_column: str | None = None, confounds: list[str] = (),
                     combat: bool = False) -> pd.DataFrame:
    """The primary metric when only a fraction of each training fold's participants keep
    their label.

    The outer participant-grouped splits and their test sets stay fixed; inside every training
    fold a random subset (``fraction``, stratified on the target within site, two or more
    participants per cell) is kept, ``n_repeats`` times, and every
    fitted step (deconfounding and ComBat included, as in :func:`evaluate`) sees that subset
    only. One row per feature set x fraction: mean and SD over repeats of the fold mean;
    ``n_failed`` counts repeats whose subset ComBat could not be fitted on (logged).
    """
    data = sample(features, participants, target, positive, site_column, confounds, combat)
    target_, y, groups = data.target, data.y, np.asarray(data.participants)
    strata = target_.strata(y)
    splits = (splits_from_folds(folds, groups) if folds is not None else
              make_splits(strata, groups, None, outer_folds, seed)["stratified_group_kfold"])
    check_splits(splits, groups)
    rng = np.random.default_rng(seed)
    # subsets keep every class (or quintile) within every site: two or more of each
    cells = strata if data.sites is None else np.char.add(
        np.char.add(strata.astype(str), "@"), data.sites.astype(str))
    subsets = {(f, r, k): train[_stratified_subset(cells[train], f, rng)]
               for f in fractions for r in range(n_repeats)
               for k, (train, _) in enumerate(splits)}
    rows = []
    for name, frame in features.items():
        for fraction in fractions:
            repeats = []
            for repeat in range(n_repeats):
                kept = [(subsets[fraction, repeat, k], test)
                        for k, (_, test) in enumerate(splits)]
                try:
                    score = cross_validate(data.designs(frame, kept, combat), y, kept,
                                           target_, model, inner_folds, seed)
                except ValueError as err:  # ComBat on a very small labelled subset
                    logging.warning("label efficiency, %s at %g: %s", name, fraction, err)
                    repeats.append(np.nan)
                    continue
                repeats.append(np.nanmean(_per_fold(y, score, kept, target_)[target_.primary]))
            sizes = [len(subsets[fraction, r, k]) for r in range(n_repeats)
                     for k in range(len(splits))]
            rows.append({"target": target, "feature_set": name, "fraction": fraction,
                         "n_train_labelled": round(float(np.mean(sizes)), 1),
                         "metric": target_.primary, "mean": np.nanmean(repeats),
                         "sd": np.nanstd(repeats), "n_failed": int(np.isnan(repeats).sum()),
                         "chance": target_.chance(target_.primary, y, splits),
                         "n_repeats": n_repeats})
    return pd.DataFrame(rows)


def _stratified_subset(strata: np.ndarray, fraction: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Indices of a random ``fraction`` of ``strata`` with every stratum kept (at least 2
    each)."""
    keep = []
    for label in np.unique(strata):
        members = np.flatnonzero(strata == label)
        n = max(2, int(round(fraction * len(members))))
        keep.append(rng.choice(members, size=min(n, len(members)), replace=False))
    return np.sort(np.concatenate(keep))


def site_probe(features: dict[str, pd.DataFrame], participants: pd.DataFrame,
               site_column: str, model: str, n_folds: int, inner_folds: int,
               seed: int, folds: pd.DataFrame | None = None, confounds: list[str] = (),
               combat: bool = False) -> pd.DataFrame:
    """How well each feature set predicts acquisition site (balanced accuracy, chance = 1/k),
    after the same deconfounding and ComBat as :func:`evaluate` (fitted in training folds).

    Tables embedded per fold are probed on their pretraining ``folds``."""
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
        score = cross_validate(data.designs(frame, splits, combat), data.y, splits,
                               data.target, model, inner_folds, seed)
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
