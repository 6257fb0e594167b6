"""The models of the harness (one registry: adding a model is one function here or in a
user's module) and the label-free steps fitted inside each training fold."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    StratifiedKFold,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC, LinearSVR
from threadpoolctl import threadpool_limits

from brainrep.config import registering
from brainrep.predict.ridge import ScaledRidgeCV
from brainrep.storage import RowStore

RIDGE_ALPHAS = np.logspace(-2, 4, 7)
C_GRID = {"logistic_regression": np.logspace(-3, 1, 5), "linear_svm": np.logspace(-4, 0, 5)}
#: name -> factory(task, inner_folds, seed) returning an unfitted scikit-learn estimator whose
#: hyper-parameters are tuned inside the training data it is fitted on. ``downstream.model``
#: names one; :func:`register_model` adds one.
MODELS: dict[str, Callable[[str, int, int], BaseEstimator]] = {}
SPD_PREFIX = "cov__"  # feature tables of SPD matrices (upper triangle with diagonal)
FOLD_COLUMN = "encoder_fold"  # feature tables from encoders pretrained per outer fold
SPD_CHUNK = 16  # SPD matrices per batch of eigendecompositions in the tangent space


class MatrixLogarithms:
    """Memo of the matrix logarithms (pyriemann's ``logm``) of SPD matrices, keyed by their
    content: the log-Euclidean reference of every training fold (outer folds, schemes,
    label-fraction subsets) reuses each participant's logarithm instead of recomputing its
    eigendecomposition. Holds one n x n float64 matrix per distinct matrix it was given
    (per participant and SPD feature set, plus one per imputed row of a training fold), about
    300 MiB for 1,000 participants of 200 parcels, in a :class:`~brainrep.storage.RowStore` (in
    ``$TMPDIR``): the kernel's page cache keeps them, not the process's memory (unless
    ``$TMPDIR`` is a RAM disk: see config/README.md). Copies
    (``copy.deepcopy``, scikit-learn's ``clone``) share it: an entry depends only on its
    matrix. Safe to call from several threads."""

    def __init__(self):
        self._rows: dict[bytes, int] = {}
        self._store: RowStore | None = None  # made on the first logarithm
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict) -> MatrixLogarithms:
        return self

    def __len__(self) -> int:
        """The number of logarithms held."""
        return len(self._rows)

    def __call__(self, matrices: np.ndarray) -> np.ndarray:
        """``logm`` of each of ``matrices`` (shape (n_matrices, n, n)), same shape."""
        from pyriemann.utils.base import logm

        keys = [hashlib.blake2b(m.tobytes(), digest_size=16).digest() for m in matrices]
        missing = [i for i, key in enumerate(keys) if key not in self._rows]
        if missing:
            logarithms = logm(matrices[missing])
            with self._lock:
                if self._store is None:
                    self._store = RowStore(matrices[0].size)
                for i, logarithm in zip(missing, logarithms, strict=True):
                    if keys[i] not in self._rows:
                        self._store.write(len(self._rows), logarithm.ravel())
                        self._rows[keys[i]] = len(self._rows)  # readable once written
        return self._store.read([self._rows[key] for key in keys]).reshape(matrices.shape)


class TangentSpaceFeatures(BaseEstimator, TransformerMixin):
    """Upper-triangle SPD matrices -> Riemannian tangent-space vectors (pyriemann).

    The reference point is fitted on the training rows only, so the projection belongs inside
    the cross-validated pipeline. It is the log-Euclidean mean (closed form, one eigen-
    decomposition per matrix; the iterative Riemannian mean takes ~7x longer for 200 parcels),
    and the map is the affine-invariant logarithm at that point (pyriemann's ``TangentSpace``
    with ``metric={"mean": "logeuclid", "map": "riemann"}``, the same numbers). The last
    ``n_passthrough`` columns (nuisance variables for :class:`NuisanceRemoval`) pass through
    unchanged. ``logarithms`` (:class:`MatrixLogarithms`) shares the training matrices'
    logarithms between fits on overlapping rows. With ``copy=False``, :meth:`transform`
    writes the vectors over the rows of an X that owns its memory (the vectors have the
    upper triangle's length), a chunk once it has been read.
    """

    def __init__(self, n_passthrough: int = 0, logarithms: MatrixLogarithms | None = None,
                 n_jobs: int = 1, copy: bool = True):
        self.n_passthrough = n_passthrough
        self.logarithms = logarithms
        self.n_jobs = n_jobs
        self.copy = copy

    def fit(self, X, y=None):
        from pyriemann.utils.base import expm, logm

        logarithm = logm if self.logarithms is None else self.logarithms
        total = None  # summed in row order as np.mean sums (pyriemann's mean_logeuclid)
        for logs in self._per_chunk(logarithm, X):
            for log in logs:
                total = log.copy() if total is None else np.add(total, log, out=total)
        self.reference_ = expm(total / len(X))
        return self

    def transform(self, X):
        from pyriemann.tangentspace import tangent_space

        X = np.asarray(X, dtype=float)
        in_place = not self.copy and X.flags.owndata and X.flags.writeable
        out = X if in_place else np.empty_like(X)  # vectors: the upper triangle's length
        start = 0
        for vectors in self._per_chunk(
                lambda matrices: tangent_space(matrices, self.reference_, metric="riemann"), X):
            out[start:start + len(vectors), :vectors.shape[1]] = vectors
            start += len(vectors)
        out[:, X.shape[1] - self.n_passthrough:] = X[:, X.shape[1] - self.n_passthrough:]
        return out

    def _per_chunk(self, function, X) -> Iterator[np.ndarray]:
        """``function`` of each chunk of :meth:`_chunks`, in order, in ``n_jobs`` threads of
        one BLAS thread each (a few chunks in flight)."""
        with threadpool_limits(limits=1, user_api="blas"):
            yield from Parallel(n_jobs=self.n_jobs, prefer="threads", return_as="generator")(
                delayed(function)(matrices) for matrices in self._chunks(X))

    def _chunks(self, X) -> Iterator[np.ndarray]:
        """The rows of X as symmetric matrices, :data:`SPD_CHUNK` at a time (shape (k, n, n)):
        the eigendecompositions' temporaries stay a few times that size, whatever the
        number of rows."""
        X = np.asarray(X, dtype=float)[:, :X.shape[1] - self.n_passthrough]
        n = int((np.sqrt(8 * X.shape[1] + 1) - 1) / 2)
        upper = np.triu_indices(n)
        for start in range(0, len(X), SPD_CHUNK):
            rows = X[start:start + SPD_CHUNK]
            matrices = np.zeros((len(rows), n, n))
            matrices[:, upper[0], upper[1]] = rows
            yield matrices + np.triu(matrices, 1).transpose(0, 2, 1)


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


def is_spd(frame: pd.DataFrame) -> bool:
    """Whether a feature table holds SPD matrices (columns ``cov__<a>__<b>``)."""
    return all(c.startswith(SPD_PREFIX) for c in frame.columns
               if c not in ("participant_id", FOLD_COLUMN))


def label_free_steps(spd: bool = False, n_nuisance: int = 0, combat: bool = False,
                     impute: bool = False, logarithms: MatrixLogarithms | None = None,
                     n_jobs: int = 1):
    """The steps fitted without labels: mean imputation of missing values with ``impute``
    (e.g. edges of a parcel a run lacks), tangent-space projection of SPD features (sharing
    ``logarithms``, in ``n_jobs`` threads), then removal of the last ``n_nuisance`` columns (a
    :func:`nuisance_design` block) by :class:`NuisanceRemoval`, ComBat across sites with
    ``combat``. None when there are none. The imputation and the projection overwrite the
    matrix they are given (``copy=False``): give the steps a copy that is not read again."""
    steps = [SimpleImputer(strategy="mean", copy=False)] if impute else []
    if spd:
        steps.append(TangentSpaceFeatures(n_nuisance, logarithms, n_jobs, copy=False))
    if n_nuisance:
        steps.append(NuisanceRemoval(n_nuisance, combat=combat))
    return make_pipeline(*steps) if steps else None


def register_model(name: str):
    """Decorator adding a model factory ``(task, inner_folds, seed) -> estimator`` to
    :data:`MODELS` under ``name`` (``task``: binary, multiclass or continuous)."""
    return registering(MODELS, name)


def _tuned_by_c(estimator: BaseEstimator, grid: np.ndarray, task: str, inner_folds: int,
                seed: int) -> GridSearchCV:
    """Scaling and ``estimator``, C tuned by an inner (stratified) k-fold on balanced accuracy,
    or R² for a continuous target."""
    continuous = task == "continuous"
    inner = (KFold if continuous else StratifiedKFold)(inner_folds, shuffle=True,
                                                       random_state=seed)
    return GridSearchCV(make_pipeline(StandardScaler(), estimator),
                        {f"{type(estimator).__name__.lower()}__C": grid}, cv=inner,
                        scoring="r2" if continuous else "balanced_accuracy")


@register_model("ridge")
def ridge(task: str, inner_folds: int, seed: int):
    """Scaling and a ridge classifier (balanced classes) or regression, alpha tuned by exact
    leave-one-out (fast enough for permutation tests): scikit-learn's ``StandardScaler`` and
    ``RidgeClassifierCV``/``RidgeCV``, the same numbers, in memory for one copy of the
    design (:class:`~brainrep.predict.ridge.ScaledRidgeCV`)."""
    return ScaledRidgeCV(RIDGE_ALPHAS, classifier=task != "continuous")


@register_model("logistic_regression")
def logistic_regression(task: str, inner_folds: int, seed: int):
    """L2 logistic regression (balanced classes), C tuned inside; ridge for a continuous
    target (:func:`model_name`)."""
    if task == "continuous":
        return ridge(task, inner_folds, seed)
    return _tuned_by_c(LogisticRegression(max_iter=2000, class_weight="balanced"),
                       C_GRID["logistic_regression"], task, inner_folds, seed)


@register_model("linear_svm")
def linear_svm(task: str, inner_folds: int, seed: int):
    """Linear SVM classifier (balanced classes) or regressor, C tuned inside."""
    estimator = (LinearSVR(max_iter=20000) if task == "continuous" else
                 LinearSVC(class_weight="balanced", max_iter=20000))
    return _tuned_by_c(estimator, C_GRID["linear_svm"], task, inner_folds, seed)


def build_model(name: str, task: str, inner_folds: int, seed: int):
    """The unfitted model ``name`` of :data:`MODELS` for a ``task`` target."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)} or add one "
                         "with brainrep.predict.register_model")
    return MODELS[name](task, inner_folds, seed)


def model_name(name: str, task: str) -> str:
    """The model :func:`build_model` fits for ``name`` on a ``task`` target."""
    return "ridge" if task == "continuous" and name == "logistic_regression" else name
