"""Cross-validated evaluation of every feature set on the same participants: out-of-fold
scores, metrics with bootstrap intervals, and label permutations within site."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.special import softmax
from scipy.stats import pearsonr
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)
from threadpoolctl import threadpool_limits

from brainrep.predict.models import (
    FOLD_COLUMN,
    MatrixLogarithms,
    build_model,
    is_spd,
    label_free_steps,
    model_name,
    nuisance_design,
)
from brainrep.predict.ondisk import RowsOnDisk, TableOnDisk
from brainrep.predict.settings import PredictionSettings
from brainrep.predict.splits import LeakageError, check_splits, make_splits, splits_from_folds
from brainrep.predict.targets import Target, resolve_target


def design(frame: pd.DataFrame | TableOnDisk, participants: list[str]
           ) -> np.ndarray | RowsOnDisk | list[np.ndarray]:
    """Feature matrix of ``participants`` in order (rows read when indexed for a
    :class:`TableOnDisk`); for a table embedded by one encoder per outer fold (column
    ``encoder_fold``), one matrix per fold, in fold order."""
    if isinstance(frame, TableOnDisk):
        order = pd.Index(frame["participant_id"]).get_indexer(participants)
        if (order < 0).any():
            raise KeyError(f"not in the table: {np.asarray(participants)[order < 0][:5]}")
        return RowsOnDisk(frame.rows, order, frame.missing[order])
    if FOLD_COLUMN not in frame:
        if frame["participant_id"].tolist() == participants:  # in order: no copy
            return frame.drop(columns="participant_id").to_numpy(dtype=float)
        return frame.set_index("participant_id").loc[participants].to_numpy(dtype=float)
    return [rows.drop(columns=FOLD_COLUMN).set_index("participant_id").loc[participants]
            .to_numpy(dtype=float) for _, rows in frame.groupby(FOLD_COLUMN, sort=True)]


def with_nuisance(X: np.ndarray | RowsOnDisk | list[np.ndarray],
                  nuisance: pd.DataFrame | None, participants: list[str]
                  ) -> np.ndarray | RowsOnDisk | list[np.ndarray]:
    """Append the nuisance block of ``participants`` to X (or to each per-fold X)."""
    if nuisance is None:
        return X
    block = nuisance.loc[participants].to_numpy()
    if isinstance(X, RowsOnDisk):
        return replace(X, extra=block, missing=X.missing | np.isnan(block).any(axis=1))
    if isinstance(X, list):
        return [np.hstack([x, block]) for x in X]
    return np.hstack([X, block])


def fold_designs(X: np.ndarray | RowsOnDisk | list[np.ndarray], splits, spd: bool = False,
                 n_nuisance: int = 0, combat: bool = False,
                 logarithms: MatrixLogarithms | None = None, n_jobs: int = 1
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(training, test) matrices of every outer split after the :func:`label_free_steps`,
    fitted on that split's training rows, one split at a time (memory holds one split's
    design, not all of them). They never see labels, so every label permutation reuses them
    (the inner tuning loop sees them fitted on the whole outer training fold).

    ``X`` is one matrix (in memory or :class:`RowsOnDisk`), or one per split (features from
    an encoder pretrained per fold).
    Missing values (NaN) are imputed by the training rows' means. ``logarithms`` shares the
    SPD matrices' logarithms between the splits' tangent-space references, whose
    eigendecompositions run in ``n_jobs`` threads. The steps run on one BLAS thread, so the
    designs are the same for any ``n_jobs`` and any machine's thread count (the model fits of
    :func:`cross_validate` use the BLAS threads they are given: their scores can differ in
    the last bits, ~1e-15, between machines).
    """
    if isinstance(X, list) and len(X) != len(splits):
        raise LeakageError(f"features come from {len(X)} per-fold encoders but there are "
                           f"{len(splits)} splits; they must be the pretraining folds")
    for k, (train, test) in enumerate(splits):
        Xk = X[k] if isinstance(X, list) else X
        missing = Xk.missing.any() if isinstance(Xk, RowsOnDisk) else np.isnan(Xk).any()
        steps = label_free_steps(spd, n_nuisance, combat, impute=bool(missing),
                                 logarithms=logarithms, n_jobs=n_jobs)
        if steps is None:
            yield Xk[train], Xk[test]
            continue
        with threadpool_limits(limits=1, user_api="blas"):
            design = [(steps.fit_transform(Xk[train]), steps.transform(Xk[test]))]
        yield design.pop()  # held by the consumer only: freed when it is done with it


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


def cross_validate(designs, y: np.ndarray, splits, target: Target, model: str,
                   inner_folds: int, seed: int, permutations: list[np.ndarray] = (),
                   n_jobs: int = 1, consume: bool = False) -> list[np.ndarray]:
    """Out-of-fold decision scores (see :func:`_decision`) of every row for the labels ``y``
    and for each of ``permutations``, the model refitted and re-tuned on each outer training
    fold of :func:`fold_designs` (consumed one split at a time: one split's design, and
    joblib's memory-mapped copy of it, is freed before the next is built). The refits on
    permuted labels run first, in ``n_jobs`` processes. With ``consume`` (designs that are read
    once, as :func:`fold_designs` makes them) the fit on ``y`` is each design's last use and
    may overwrite it (see :func:`_fold_decision`); without, the designs are left as they are.
    Returns ``[scores of y, *scores of each permutation]``.
    """
    shape = (len(y), len(target.classes)) if target.task == "multiclass" else len(y)
    scores = [np.full(shape, np.nan) for _ in range(1 + len(permutations))]
    designs = iter(designs)
    for train, test in splits:
        fold = list(next(designs))  # [X_train, X_test], until the fit on y takes them
        null = Parallel(n_jobs=n_jobs if permutations else 1)(
            delayed(_fold_decision)(fold, labels[train], target, model, inner_folds, seed)
            for labels in permutations)
        scores[0][test] = _fold_decision(fold, y[train], target, model, inner_folds, seed,
                                         last_use=consume)
        for score, decision in zip(scores[1:], null, strict=True):
            score[test] = decision
        del null
    if next(designs, None) is not None:
        raise ValueError("more fold designs than splits")
    return scores


def _fold_decision(fold: list[np.ndarray], y_train: np.ndarray, target: Target, model: str,
                   inner_folds: int, seed: int, last_use: bool = False) -> np.ndarray:
    """The test rows' decision scores of ``model`` fitted on one training fold
    (``fold``: [X_train, X_test]). With ``last_use`` (the fold is not read again) the
    matrices are taken out of ``fold``: a model with a ``copy_X`` parameter then works in
    X_train's memory instead of a copy of it, and X_train is freed before the test rows are
    scored."""
    X_train, X_test = (fold.pop(0), fold.pop(0)) if last_use else fold
    estimator = build_model(model, target.task, inner_folds, seed)
    if last_use and X_train.flags.owndata and "copy_X" in estimator.get_params(deep=False):
        estimator.set_params(copy_X=False)
    estimator.fit(X_train, y_train)
    del X_train
    return _decision(estimator, X_test, target)


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


def per_fold_scores(y, score, splits, target: Target) -> dict[str, list[float]]:
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
    block (:func:`nuisance_design`, or None); the SPD logarithms its designs share."""

    target: Target
    participants: list[str]
    y: np.ndarray
    sites: np.ndarray | None
    nuisance: pd.DataFrame | None
    logarithms: MatrixLogarithms = field(default_factory=MatrixLogarithms)

    def designs(self, frame: pd.DataFrame | TableOnDisk, splits, combat: bool = False,
                n_jobs: int = 1):
        """:func:`fold_designs` of one feature table on this sample's participants."""
        X = with_nuisance(design(frame, self.participants), self.nuisance, self.participants)
        return fold_designs(X, splits, is_spd(frame),
                            0 if self.nuisance is None else self.nuisance.shape[1], combat,
                            self.logarithms, n_jobs)


def sample(features: dict[str, pd.DataFrame], participants: pd.DataFrame, target: str,
           positive: str | dict[str, str] | None, site_column: str | None,
           confounds: list[str] = (), combat: bool = False,
           among: Collection[str] | None = None) -> Sample:
    """The :class:`Sample` of participants labelled for ``target`` with every feature set
    (and, when confounds are removed or sites harmonized, every nuisance variable), among
    ``among`` when given (the participants of feature sets evaluated in other calls)."""
    resolved = resolve_target(participants, target, positive)
    if combat and not site_column:
        raise ValueError("downstream.combat needs downstream.site_column")
    nuisance = (nuisance_design(participants, site_column, list(confounds))
                if confounds or combat else None)
    labelled = participants.dropna(subset=[target]).set_index("participant_id")
    common = sorted(set(labelled.index).intersection(
        *(set(f["participant_id"]) for f in features.values()),
        *([set(nuisance.index)] if nuisance is not None else []),
        *([set(among)] if among is not None else [])))
    y = resolved.values(labelled, common)
    sites = labelled.loc[common, site_column].astype(str).to_numpy() if site_column else None
    return Sample(resolved, common, y, sites, nuisance)


def score_key(name: str, data: Sample, splits, combat: bool) -> tuple:
    """What the out-of-fold scores of one feature set depend on beyond the settings: its
    participants, the splits and whether ComBat ran (the key of ``scores_seen``)."""
    return (name, tuple(data.participants), combat,
            tuple((train.tobytes(), test.tobytes()) for train, test in splits))


def evaluate(features: dict[str, pd.DataFrame], participants: pd.DataFrame, target: str, *,
             settings: PredictionSettings, folds: pd.DataFrame | None = None,
             n_jobs: int = 1, among: Collection[str] | None = None,
             scores_seen: dict[tuple, np.ndarray] | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Evaluate every feature set on the same participants for one target (those of
    ``among`` too, when given: see :func:`predict_target`).

    ``settings.positive_class`` is the scored class of a binary target
    (:func:`resolve_target`). ``folds`` (:func:`participant_folds`) fixes the
    participant-grouped outer folds; it is required for feature tables embedded per fold,
    which leave-site-out then skips. ``settings.deconfound`` (participants.tsv columns) are
    regressed out of the features and ``settings.combat`` harmonizes sites (ComBat), both
    inside each training fold (:class:`NuisanceRemoval`); ComBat is off in leave-site-out,
    where the test site is never seen in training. Labels are permuted within site in both
    schemes; the p-value is on the target's primary metric. The permutation refits run in
    ``n_jobs`` processes (the same numbers for any ``n_jobs``). ``scores_seen`` (a dict, by
    :func:`score_key`) receives each feature set's out-of-fold scores, for
    :func:`~brainrep.predict.label_efficiency` to reuse at fraction 1 (and adds its own):
    share one dict between calls with the same target, settings and feature tables only
    (the key does not hold them).

    Returns the tidy metrics table (one row per scheme x feature set x metric), the
    out-of-fold predictions and the splits.
    """
    model, inner_folds, seed = settings.model, settings.inner_folds, settings.seed
    confounds, combat = settings.deconfound, settings.combat
    n_permutations, n_bootstrap = settings.n_permutations, settings.n_bootstrap
    data = sample(features, participants, target, settings.positive_class,
                  settings.site_column, confounds, combat, among)
    target_, y, groups = data.target, data.y, np.asarray(data.participants)
    schemes = make_splits(target_.strata(y), groups, data.sites, settings.outer_folds, seed)
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
            score, *permuted = cross_validate(
                data.designs(frame, splits, harmonized, n_jobs), y, splits, target_, model,
                inner_folds, seed, permutations, n_jobs, consume=True)
            if scores_seen is not None:
                scores_seen[score_key(name, data, splits, harmonized)] = score
            observed = per_fold_scores(y, score, splits, target_)
            null = [np.nanmean(per_fold_scores(y_perm, null_score, splits,
                                               target_)[target_.primary])
                    for y_perm, null_score in zip(permutations, permuted, strict=True)]
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
