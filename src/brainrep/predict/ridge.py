"""Standardization then ridge with exact leave-one-out alpha, holding one copy of the design.

scikit-learn's ``make_pipeline(StandardScaler(), RidgeClassifierCV(class_weight="balanced"))``
holds the training design four times while it fits: the scaler's output, the ridge's centred
copy, the weighted mean's temporary and, briefly, the scaler's own statistics' copies. At
1,000 participants of 20,100 edges that is 0.5 GB beyond the design; at 10,000, 5 GB per
process. :class:`ScaledRidgeCV` computes the same numbers from one copy (none with
``copy_X=False``): the column statistics go a block of columns at a time, the scaling,
centring and weighting are done in place, and the leave-one-out solution is scikit-learn's
``_RidgeGCV`` in its Gram mode, the mode it takes when participants are fewer than features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import RidgeClassifierCV, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelBinarizer, StandardScaler
from sklearn.utils import check_array, column_or_1d, compute_sample_weight
from sklearn.utils.validation import check_is_fitted

COLUMN_BLOCK_VALUES = 2**21  # values per block of columns of the column statistics (16 MiB)


def column_blocks(n_rows: int, n_columns: int) -> list[slice]:
    """Slices of at most :data:`COLUMN_BLOCK_VALUES` values of an (n_rows, n_columns) array."""
    width = max(1, COLUMN_BLOCK_VALUES // max(n_rows, 1))
    return [slice(start, start + width) for start in range(0, n_columns, width)]


class ScaledRidgeCV(BaseEstimator):
    """Standardized features, then ridge regression (``classifier=False``: scikit-learn's
    ``RidgeCV``) or a ridge classifier with balanced class weights (``RidgeClassifierCV``),
    alpha chosen among ``alphas`` by exact leave-one-out error: the pipeline
    ``make_pipeline(StandardScaler(), RidgeClassifierCV(alphas, class_weight="balanced"))``,
    the same numbers for a float64 design (a float32 one is scaled in float64 here, in
    float32 by the pipeline, whose scores are then float32), in memory for the design and one
    copy of it
    (``copy_X=False``: the design itself is standardized in place and must not be used
    again).

    A design with more rows than columns (a few confounds, band powers of a large cohort) is
    small: it is fitted by that scikit-learn pipeline as it is.

    Attributes: ``mean_``, ``scale_`` (the columns' statistics, shape (p,)), ``alpha_``,
    ``coef_`` (shape (p,) for one target or two classes, else (k, p)), ``intercept_``, and
    ``classes_`` for a classifier.
    """

    def __init__(self, alphas: Sequence[float] = (0.1, 1.0, 10.0), classifier: bool = True,
                 copy_X: bool = True):
        self.alphas = alphas
        self.classifier = classifier
        self.copy_X = copy_X

    def fit(self, X, y) -> ScaledRidgeCV:
        if np.any(np.asarray(self.alphas, dtype=float) <= 0):
            raise ValueError(f"every ridge alpha must be > 0, got {self.alphas}")
        X = check_array(X, dtype=np.float64, copy=False)
        n_rows, n_columns = X.shape
        self.n_features_in_ = n_columns
        self.pipeline_ = None
        if n_rows > n_columns:
            final = (RidgeClassifierCV(alphas=self.alphas, class_weight="balanced")
                     if self.classifier else RidgeCV(alphas=self.alphas))
            self.pipeline_ = make_pipeline(StandardScaler(), final).fit(X, y)
            self.mean_, self.scale_ = self.pipeline_[0].mean_, self.pipeline_[0].scale_
            self.alpha_, self.coef_, self.intercept_ = final.alpha_, final.coef_, \
                final.intercept_
            if self.classifier:
                self.classes_ = final.classes_
            return self
        blocks = column_blocks(n_rows, n_columns)
        scalers = [StandardScaler().fit(X[:, block]) for block in blocks]
        self.mean_ = np.concatenate([scaler.mean_ for scaler in scalers])
        self.scale_ = np.concatenate([scaler.scale_ for scaler in scalers])
        targets, weights = self._targets(y)
        design = X if not self.copy_X and X.flags.writeable else np.array(X, copy=True)
        design -= self.mean_
        design /= self.scale_
        # scikit-learn's _preprocess_data: weighted centring, then rows times sqrt(weight)
        if weights is None:
            x_offset = np.concatenate([np.mean(design[:, block], axis=0) for block in blocks])
            y_offset = np.mean(targets, axis=0)
        else:
            column = weights.reshape(-1, 1)  # targets are the classes' columns here
            x_offset = np.concatenate([np.sum(np.multiply(design[:, block], column), axis=0)
                                       for block in blocks]) / np.sum(column, axis=0)
            y_offset = np.sum(np.multiply(targets, column), axis=0) / np.sum(column, axis=0)
        design -= x_offset
        targets -= y_offset
        sqrt_weights = np.ones(n_rows) if weights is None else np.sqrt(weights)
        if weights is not None:
            design *= sqrt_weights[:, None]
            targets *= sqrt_weights[:, None]
        coef = self._leave_one_out(design, targets, sqrt_weights)
        if targets.ndim == 2:
            coef = coef.T
            if coef.shape[0] == 1:
                coef = coef.ravel()
        self.coef_ = coef
        self.intercept_ = y_offset - x_offset @ (coef if coef.ndim == 1 else coef.T)
        return self

    def _targets(self, y) -> tuple[np.ndarray, np.ndarray | None]:
        """The regression targets (float) and the sample weights: ±1 columns of the classes
        with balanced weights (as ``RidgeClassifierCV``), or y and no weights."""
        if not self.classifier:
            return check_array(y, dtype=np.float64, ensure_2d=False, copy=True), None
        binarizer = LabelBinarizer(pos_label=1, neg_label=-1)
        targets = binarizer.fit_transform(y).astype(np.float64)
        self.classes_ = binarizer.classes_
        weights = np.ones(len(targets)) * compute_sample_weight("balanced", column_or_1d(y))
        return targets, weights

    def _leave_one_out(self, design: np.ndarray, targets: np.ndarray,
                       sqrt_weights: np.ndarray) -> np.ndarray:
        """The coefficients of the alpha with the smallest mean squared leave-one-out error
        (the first of equals), from the eigendecomposition of the Gram matrix (scikit-learn's
        ``_RidgeGCV._solve_eigen_gram``, whose ``looe`` this is); sets ``alpha_``."""
        eigenvalues, vectors = np.linalg.eigh(design @ design.T)
        vectors_t_targets = vectors.T @ targets
        vectors_t_weights = vectors.T @ sqrt_weights
        weight_sum = sqrt_weights @ sqrt_weights
        best_score, best_dual = None, None
        for alpha in map(float, np.asarray(self.alphas).ravel()):
            inverse = 1.0 / (eigenvalues + alpha)
            dual = vectors @ (inverse[:, None] * vectors_t_targets if targets.ndim == 2
                              else inverse * vectors_t_targets)
            diagonal = np.sum(inverse * vectors**2, axis=1)
            diagonal -= (vectors @ (inverse * vectors_t_weights)) * sqrt_weights / weight_sum
            if targets.ndim == 2:
                diagonal = diagonal[:, None]
            score = np.mean(-((dual / diagonal) ** 2))
            if best_score is None or score > best_score:
                best_score, best_dual, self.alpha_ = score, dual, alpha
        return design.T @ best_dual

    def decision_function(self, X) -> np.ndarray:
        """Scores of X (shape (n,) for one target or two classes, else (n, k))."""
        check_is_fitted(self, "coef_")
        if self.pipeline_ is not None:
            final = self.pipeline_[-1]
            return (final.decision_function if self.classifier else final.predict)(
                self.pipeline_[:-1].transform(X))
        design = check_array(X, dtype=np.float64, copy=True)
        design -= self.mean_
        design /= self.scale_
        return design @ self.coef_.T + self.intercept_

    def predict(self, X) -> np.ndarray:
        """Classes (the positive score's side, or the largest score), or values."""
        scores = self.decision_function(X)
        if not self.classifier:
            return scores
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def score(self, X, y) -> float:
        """Accuracy of a classifier, R² of a regressor (scikit-learn's default scores)."""
        from sklearn.metrics import accuracy_score, r2_score

        return (accuracy_score if self.classifier else r2_score)(y, self.predict(X))

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, RegressorTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier" if self.classifier else "regressor"
        tags.target_tags.required = True
        if self.classifier:
            tags.classifier_tags = ClassifierTags()
        else:
            tags.regressor_tags = RegressorTags()
        return tags

