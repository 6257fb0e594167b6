"""Data-driven subtypes with their own falsification: stability, a single-Gaussian null that
repeats the whole procedure, and checks against site, motion and symptom severity that are
never circular (a variable regressed out, or one the method fitted on, is not tested as if it
were independent of the clusters)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control, rankdata
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from brainrep.config import registering
from brainrep.subtype.settings import SubtypingSettings


def reduce(X: np.ndarray, nuisance: pd.DataFrame, n_components: int, seed: int) -> np.ndarray:
    """Regress nuisance covariates out (categorical one-hot), standardize, PCA.

    PCA keeps at most ``n_components`` (and n - 1) dimensions.
    """
    if nuisance.shape[1]:
        X = X - nuisance_fit(X, nuisance) + X.mean(axis=0)
    n_components = min(n_components, X.shape[0] - 1, X.shape[1])
    return PCA(n_components, random_state=seed).fit_transform(StandardScaler().fit_transform(X))


def nuisance_fit(X: np.ndarray, nuisance: pd.DataFrame) -> np.ndarray:
    """The part of X (participants, features) the nuisance covariates explain (categories
    one-hot), intercept included; the feature means when there are none."""
    if not nuisance.shape[1]:
        return np.broadcast_to(X.mean(axis=0), X.shape)
    design = pd.get_dummies(nuisance, drop_first=True, dtype=float).to_numpy()
    return LinearRegression().fit(design, X).predict(design)


class Clusterer(Protocol):
    """An unfitted clustering estimator: ``fit_predict(Z)`` returns labels 0..k-1."""

    def fit_predict(self, X: np.ndarray) -> np.ndarray: ...


#: name -> factory(k, seed) returning an unfitted :class:`Clusterer`;
#: ``downstream.subtyping.method`` names one and :func:`register_clustering` adds one.
CLUSTERING: dict[str, Callable[[int, int], Clusterer]] = {}


def register_clustering(name: str):
    """Decorator adding a clustering factory ``(k, seed) -> estimator`` to :data:`CLUSTERING`."""
    return registering(CLUSTERING, name)


@register_clustering("kmeans")
def kmeans(k: int, seed: int) -> Clusterer:
    """k-means, best of 10 initialisations."""
    return KMeans(k, n_init=10, random_state=seed)


@register_clustering("gmm")
def gmm(k: int, seed: int) -> Clusterer:
    """Full-covariance Gaussian mixture, best of 5 initialisations."""
    return GaussianMixture(k, covariance_type="full", n_init=5, reg_covar=1e-4,
                           random_state=seed)


@register_clustering("agglomerative")
def agglomerative(k: int, seed: int) -> Clusterer:
    """Ward agglomerative clustering (deterministic: the seed is unused)."""
    return AgglomerativeClustering(k, linkage="ward")


def cluster(Z: np.ndarray, k: int, seed: int, method: str = "kmeans") -> np.ndarray:
    """Labels 0..k-1 of the rows of Z by the :data:`CLUSTERING` method ``method``."""
    if method not in CLUSTERING:
        raise ValueError(f"unknown clustering method {method!r}; choose one of "
                         f"{sorted(CLUSTERING)} or add one with "
                         "brainrep.subtype.register_clustering")
    return CLUSTERING[method](k, seed).fit_predict(Z)


def bootstrap_stability(Z: np.ndarray, k: int, n_bootstrap: int, seed: int,
                        method: str = "kmeans") -> np.ndarray:
    """ARI between the full-sample solution and the solution on each bootstrap sample
    (participants drawn with replacement), over the distinct participants drawn."""
    rng = np.random.default_rng(seed)
    reference = cluster(Z, k, seed, method)
    scores = []
    for draw in range(n_bootstrap):
        idx = rng.choice(len(Z), len(Z), replace=True)
        labels = cluster(Z[idx], k, seed + draw + 1, method)
        distinct, first = np.unique(idx, return_index=True)
        scores.append(adjusted_rand_score(reference[distinct], labels[first]))
    return np.array(scores)


def replication_ari(Z: np.ndarray, k: int, seed: int, method: str = "kmeans",
                    n_splits: int = 20) -> float:
    """Held-out replication (prediction strength, Tibshirani and Walther 2005): cluster a
    random half, assign the other half to its nearest discovery centroid, cluster the other
    half on its own, and take the ARI of the two labelings; mean over ``n_splits`` halvings.
    NaN when a half has fewer than two participants per cluster.
    """
    if len(Z) // 2 < 2 * k:  # each half needs at least two participants per cluster
        return float("nan")
    rng = np.random.default_rng(seed)
    scores = []
    for split in range(n_splits):
        order = rng.permutation(len(Z))
        discovery, replication = order[:len(Z) // 2], order[len(Z) // 2:]
        found = cluster(Z[discovery], k, seed + split, method)
        centroids = np.stack([Z[discovery][found == c].mean(axis=0) for c in np.unique(found)])
        assigned = np.argmin(((Z[replication][:, None] - centroids[None]) ** 2).sum(-1), axis=1)
        own = cluster(Z[replication], k, seed + split, method)
        scores.append(adjusted_rand_score(assigned, own))
    return float(np.mean(scores))


def choose_k(Z: np.ndarray, ks: range, seed: int, method: str = "kmeans") -> tuple[int, float]:
    """The k of ``ks`` with the best silhouette, and that silhouette: the reported solution
    and the statistic of its null test."""
    silhouettes = {k: _silhouette(Z, cluster(Z, k, seed, method)) for k in ks}
    best = max(silhouettes, key=silhouettes.get)
    return best, silhouettes[best]


def _silhouette(Z: np.ndarray, labels: np.ndarray) -> float:
    return silhouette_score(Z, labels) if len(np.unique(labels)) > 1 else 0.0


def gaussian_draws(X: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from the Gaussian with the mean and sample covariance of the rows of X
    (exact, and cheap for many features: the covariance has rank n - 1 at most)."""
    centred = X - X.mean(axis=0)
    return X.mean(axis=0) + rng.standard_normal((n, len(X))) @ centred / np.sqrt(len(X) - 1)


def gaussian_null_p(X: np.ndarray, nuisance: pd.DataFrame, ks: range, n_components: int,
                    n_null: int, seed: int, method: str = "kmeans") -> tuple[float, float]:
    """The chosen solution's silhouette and its p-value against data without clusters: the
    part of ``X`` the nuisance covariates explain plus one multivariate Gaussian fitted to
    the rest. Each null draw goes through the whole procedure: nuisance regression, scaling,
    PCA, the choice of k and the same statistic."""
    rng = np.random.default_rng(seed)
    _, observed = choose_k(reduce(X, nuisance, n_components, seed), ks, seed, method)
    explained = nuisance_fit(X, nuisance)
    null = [choose_k(reduce(explained + gaussian_draws(X - explained, len(X), rng), nuisance,
                            n_components, seed), ks, seed, method)[1] for _ in range(n_null)]
    return observed, (1 + np.sum(np.array(null) >= observed)) / (1 + n_null)


def association_checks(labels: np.ndarray, covariates: pd.DataFrame,
                       n_permutations: int = 999, seed: int = 0) -> dict[str, float]:
    """Permutation p-values of subtype vs each covariate (exact under exchangeability, sound
    for small tables): the chi-square statistic for categories, the Kruskal-Wallis H (rank
    sums; ties leave the test unchanged) for numbers, each against ``n_permutations``
    relabellings of the participants."""
    rng = np.random.default_rng(seed)
    checks = {}
    for column in covariates:
        values = covariates[column].to_numpy()
        keep = pd.notna(values)
        groups = np.unique(labels[keep], return_inverse=True)[1]
        if keep.sum() < 3 or groups.max() < 1:
            continue
        if pd.api.types.is_numeric_dtype(covariates[column]):
            scores = rankdata(values[keep].astype(float))
        else:
            scores = np.unique(values[keep].astype(str), return_inverse=True)[1]
        if np.ptp(scores) == 0:
            continue
        numeric = pd.api.types.is_numeric_dtype(covariates[column])
        statistic = _kruskal_h if numeric else _chi_square
        observed = statistic(groups, scores)
        null = np.array([statistic(rng.permutation(groups), scores)
                         for _ in range(n_permutations)])
        checks[f"{column}_p_value"] = float((1 + np.sum(null >= observed - 1e-9))
                                            / (1 + n_permutations))
    return checks


def _kruskal_h(groups: np.ndarray, ranks: np.ndarray) -> float:
    """Kruskal-Wallis H without the tie correction (a constant under permutation)."""
    n = len(ranks)
    sums, counts = np.bincount(groups, ranks), np.bincount(groups)
    return 12 / (n * (n + 1)) * np.sum(sums ** 2 / counts) - 3 * (n + 1)


def _chi_square(groups: np.ndarray, categories: np.ndarray) -> float:
    """Pearson's chi-square statistic of the groups x categories table."""
    table = np.zeros((groups.max() + 1, categories.max() + 1))
    np.add.at(table, (groups, categories), 1)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    return float(np.sum((table - expected) ** 2 / expected))


def add_fdr(table: pd.DataFrame, exclude: tuple[str, ...] = ()) -> pd.DataFrame:
    """Benjamini-Hochberg q-values (``<name>_q_value``) across every check p-value of the
    table (all rows and ``*_p_value`` columns but those in ``exclude``)."""
    columns = [c for c in table.columns if c.endswith("_p_value") and c not in exclude]
    values = table[columns].apply(pd.to_numeric, errors="coerce")
    flat = values.to_numpy().ravel()
    finite = np.isfinite(flat)
    q = np.full(flat.shape, np.nan)
    if finite.any():
        q[finite] = false_discovery_control(flat[finite])
    q = q.reshape(values.shape)
    return table.assign(**{c.replace("_p_value", "_q_value"): q[:, i]
                           for i, c in enumerate(columns)})


def subtype_profiles(features: pd.DataFrame, covariates: pd.DataFrame,
                     assignments: pd.DataFrame, n_features: int = 8) -> pd.DataFrame:
    """What sets each subtype apart: the mean z-score (across the clustered participants) of
    every check covariate (categories as one indicator per level) and of the ``n_features``
    features that differ most between subtypes (largest ANOVA F).

    ``features`` and ``covariates`` are indexed by participant_id; ``assignments`` is
    :func:`find_subtypes`' table. Returns one row per subtype x variable (tidy).
    """
    from sklearn.feature_selection import f_classif

    labels = assignments.set_index("participant_id")["subtype"]
    X = features.loc[labels.index]
    with np.errstate(divide="ignore", invalid="ignore"):
        f_values = np.nan_to_num(f_classif(X.to_numpy(dtype=float), labels.to_numpy())[0])
    top = X.columns[np.argsort(f_values)[::-1][:n_features]]
    checks = pd.get_dummies(covariates.loc[labels.index], prefix_sep="=", dtype=float)
    rows = []
    for kind, table in (("check", checks), ("feature", X[top])):
        z = (table - table.mean()) / table.std(ddof=0).replace(0, np.nan)
        means = z.groupby(labels.to_numpy()).mean()
        rows += [{"subtype": int(subtype), "n": int((labels == subtype).sum()), "kind": kind,
                  "variable": variable, "mean_z": means.loc[subtype, variable]}
                 for subtype in means.index for variable in means.columns]
    return pd.DataFrame(rows)


def fill_gaps(features: pd.DataFrame) -> pd.DataFrame:
    """Missing values (e.g. edges of a parcel a run lacks) set to the feature's mean over the
    participants clustered (label-free, as the rest of the clustering)."""
    return features.fillna(features.mean()) if features.isna().any().any() else features


@threadpool_limits.wrap(limits=1, user_api="blas")
def find_subtypes(features: pd.DataFrame, covariates: pd.DataFrame, *,
                  settings: SubtypingSettings, seed: int
                  ) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Cluster participants (rows of ``features``, indexed by participant_id) by the
    settings' ``method`` (:func:`cluster`).

    Missing feature values take the feature's mean. The settings' ``regress_out`` columns of
    ``covariates`` are removed first, then the features are scaled and reduced to
    ``n_components`` by PCA; k is the best silhouette in ``k_range`` (``n_bootstrap``
    resamples for stability) and the null (:func:`gaussian_null_p`, ``n_null`` draws)
    repeats all of it. Every other covariate is tested against the
    solution (:func:`association_checks`); a regressed-out one is not (its association is
    removed by construction), it is tested instead against the solution found before the
    regression (``<column>_before_regression_p_value``) and named in ``not_tested``.
    Returns the summary record, the per-k stability table and the assignments.

    BLAS runs on one thread here, as Snakemake already sets for its jobs: the hundreds of
    small fits gain nothing from more, and idle BLAS threads spinning beside busy cores made
    in-process calls (tests, library use) 5x slower on a loaded 2-core machine.
    """
    regress_out, k_range, method = list(settings.regress_out), settings.k_range, settings.method
    n_components, n_null = settings.n_components, settings.n_null
    covariates = covariates.loc[features.index]
    X = fill_gaps(features).to_numpy(dtype=float)
    nuisance = covariates[regress_out]
    Z = reduce(X, nuisance, n_components, seed)
    stability = pd.DataFrame([{"k": k, "bootstrap_ari_mean": s.mean(), "bootstrap_ari_sd": s.std(),
                               "silhouette": _silhouette(Z, cluster(Z, k, seed, method))}
                              for k in k_range
                              for s in [bootstrap_stability(Z, k, settings.n_bootstrap, seed,
                                                             method)]])
    observed, p_value = gaussian_null_p(X, nuisance, k_range, n_components, n_null, seed,
                                        method)
    k = int(stability.loc[stability["silhouette"].idxmax(), "k"])
    labels = cluster(Z, k, seed, method)
    testable = [c for c in covariates.columns if c not in regress_out]
    checks = association_checks(labels, covariates[testable], seed=seed)
    regressed = [c for c in regress_out if c in covariates]
    if regressed:
        before = cluster(reduce(X, covariates[[]], n_components, seed), k, seed, method)
        checks |= {name.replace("_p_value", "_before_regression_p_value"): value
                   for name, value in association_checks(before, covariates[regressed],
                                                         seed=seed).items()}
    summary = {"method": method, "k": k, "n_participants": len(Z),
               "bootstrap_ari": float(stability.set_index("k").loc[k, "bootstrap_ari_mean"]),
               "replication_ari": replication_ari(Z, k, seed, method),
               "silhouette_best": observed, "null_p_value": p_value, "n_null": n_null,
               **{f"{c}_p_value": np.nan for c in regressed}, **checks,
               "not_tested": "; ".join(f"{c}: regressed out before clustering" for c in
                                       regressed) or "n/a"}
    assignments = pd.DataFrame({"participant_id": features.index, "subtype": labels + 1})
    return summary, stability, assignments
