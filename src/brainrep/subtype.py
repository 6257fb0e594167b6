"""Data-driven subtypes with their own falsification: stability, a single-Gaussian null, and
checks against site and symptom severity."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, kruskal
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler


def reduce(X: np.ndarray, nuisance: pd.DataFrame, n_components: int, seed: int) -> np.ndarray:
    """Regress nuisance covariates out (categorical one-hot), standardize, PCA.

    PCA keeps at most ``n_components`` (and n - 1) dimensions.
    """
    if nuisance.shape[1]:
        design = pd.get_dummies(nuisance, drop_first=True, dtype=float).to_numpy()
        X = X - LinearRegression().fit(design, X).predict(design) + X.mean(axis=0)
    n_components = min(n_components, X.shape[0] - 1, X.shape[1])
    return PCA(n_components, random_state=seed).fit_transform(StandardScaler().fit_transform(X))


def cluster(Z: np.ndarray, k: int, seed: int, method: str = "kmeans") -> np.ndarray:
    """Labels 0..k-1 of the rows of Z: ``kmeans``, ``gmm`` (full-covariance Gaussian
    mixture) or ``agglomerative`` (Ward)."""
    if method == "kmeans":
        return KMeans(k, n_init=10, random_state=seed).fit_predict(Z)
    if method == "gmm":
        return GaussianMixture(k, covariance_type="full", n_init=5, reg_covar=1e-4,
                               random_state=seed).fit_predict(Z)
    if method == "agglomerative":
        return AgglomerativeClustering(k, linkage="ward").fit_predict(Z)
    raise ValueError(f"unknown clustering method {method!r}; choose kmeans, gmm or "
                     "agglomerative")


def bootstrap_stability(Z: np.ndarray, k: int, n_bootstrap: int, seed: int,
                        method: str = "kmeans") -> np.ndarray:
    """ARI between the full-sample solution and solutions on 80 % subsamples (one per draw)."""
    rng = np.random.default_rng(seed)
    reference = cluster(Z, k, seed, method)
    scores = []
    for draw in range(n_bootstrap):
        idx = rng.choice(len(Z), int(0.8 * len(Z)), replace=False)
        scores.append(adjusted_rand_score(reference[idx],
                                          cluster(Z[idx], k, seed + draw + 1, method)))
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


def max_silhouette(Z: np.ndarray, ks: range, seed: int, method: str = "kmeans") -> float:
    """Best silhouette over the k range: the statistic of the null test (k choice included)."""
    return max(_silhouette(Z, cluster(Z, k, seed, method)) for k in ks)


def _silhouette(Z: np.ndarray, labels: np.ndarray) -> float:
    return silhouette_score(Z, labels) if len(np.unique(labels)) > 1 else 0.0


def gaussian_null_p(Z: np.ndarray, ks: range, n_null: int, seed: int,
                    method: str = "kmeans") -> tuple[float, float]:
    """p-value of the observed best silhouette against one multivariate Gaussian fitted to Z."""
    rng = np.random.default_rng(seed)
    observed = max_silhouette(Z, ks, seed, method)
    mean, cov = Z.mean(axis=0), np.atleast_2d(np.cov(Z, rowvar=False))  # also for 1 column
    null = [max_silhouette(rng.multivariate_normal(mean, cov, len(Z)), ks, seed, method)
            for _ in range(n_null)]
    return observed, (1 + np.sum(np.array(null) >= observed)) / (1 + n_null)


def association_checks(labels: np.ndarray, covariates: pd.DataFrame) -> dict[str, float]:
    """p-values of subtype vs each covariate: chi-square for categories, Kruskal-Wallis else."""
    checks = {}
    for column in covariates:
        values = covariates[column].to_numpy()
        keep = pd.notna(values)
        if keep.sum() < 3 or len(np.unique(labels[keep])) < 2:
            continue
        if pd.api.types.is_numeric_dtype(covariates[column]):
            samples = [values[keep & (labels == g)].astype(float) for g in np.unique(labels)]
            checks[f"{column}_p_value"] = float(kruskal(*samples).pvalue)
        else:
            table = pd.crosstab(labels[keep], values[keep])
            checks[f"{column}_p_value"] = float(chi2_contingency(table)[1]) \
                if table.shape[1] > 1 else 1.0
    return checks


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


def find_subtypes(features: pd.DataFrame, covariates: pd.DataFrame, regress_out: list[str],
                  k_range: range, n_components: int, n_bootstrap: int, n_null: int,
                  seed: int, method: str = "kmeans") -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Cluster participants (rows of ``features``, indexed by participant_id) by ``method``
    (:func:`cluster`).

    The ``regress_out`` columns of ``covariates`` are removed first; every covariate is then
    tested against the solution. k is the most stable in ``k_range`` (mean bootstrap ARI).
    Returns the summary record, the per-k stability table and the assignments.
    """
    covariates = covariates.loc[features.index]
    Z = reduce(features.to_numpy(dtype=float), covariates[regress_out], n_components, seed)
    stability = pd.DataFrame([{"k": k, "bootstrap_ari_mean": s.mean(), "bootstrap_ari_sd": s.std(),
                               "silhouette": _silhouette(Z, cluster(Z, k, seed, method))}
                              for k in k_range
                              for s in [bootstrap_stability(Z, k, n_bootstrap, seed, method)]])
    best = stability.loc[stability["bootstrap_ari_mean"].idxmax()]
    k = int(best["k"])
    labels = cluster(Z, k, seed, method)
    observed, p_value = gaussian_null_p(Z, k_range, n_null, seed, method)
    summary = {"method": method, "k": k, "n_participants": len(Z),
               "bootstrap_ari": best["bootstrap_ari_mean"],
               "replication_ari": replication_ari(Z, k, seed, method),
               "silhouette_best": observed, "null_p_value": p_value, "n_null": n_null,
               **association_checks(labels, covariates)}
    assignments = pd.DataFrame({"participant_id": features.index, "subtype": labels + 1})
    return summary, stability, assignments
