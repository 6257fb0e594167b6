"""Multiview subtyping after Drysdale et al. (2017): brain features x symptom scores.

Site is regressed out of the brain features, which are then screened by their rank
correlation with any symptom score; the kept ones and the symptoms go through a regularized
CCA (cca-zoo ``RidgeCCA``), and participants are clustered in the brain canonical space.
Every fitted step (site regression, scaling, feature selection, CCA) is inside
:class:`MultiviewCCA`, so the cross-validated canonical correlations are out of sample and
the permutation test (symptoms permuted within site) refits everything for every
permutation: the inflation that selection on the full sample gives cannot pass for signal.
The clusters live in a space fitted to the symptoms, so their symptom association is tested
on held-out participants only.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from cca_zoo.linear import RidgeCCA
from scipy.stats import rankdata
from sklearn.base import BaseEstimator
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from brainrep.subtype.clusters import association_checks, cluster, find_subtypes
from brainrep.subtype.settings import MultiviewSettings, SubtypingSettings


def screen_features(X: np.ndarray, Y: np.ndarray, n_features: int) -> np.ndarray:
    """Indices of the ``n_features`` columns of X with the largest |Spearman rho| with any
    column of Y."""
    rx, ry = rankdata(X, axis=0), rankdata(Y, axis=0)
    rx = (rx - rx.mean(0)) / (rx.std(0) + 1e-12)
    ry = (ry - ry.mean(0)) / (ry.std(0) + 1e-12)
    strength = np.abs(rx.T @ ry / len(X)).max(axis=1)
    return np.argsort(strength)[::-1][:min(n_features, X.shape[1])]


class MultiviewCCA(BaseEstimator):
    """Site regression + scaling + Spearman screening of brain features + ridge CCA.

    ``fit(X, Y)``: X (participants, brain features followed by ``n_nuisance`` nuisance
    columns, e.g. site indicators), Y (participants, symptom scores). ``transform(X, Y)``
    returns the brain and symptom canonical variates (n, n_components).
    """

    def __init__(self, n_features: int = 100, n_components: int = 2, shrinkage: float = 0.5,
                 n_nuisance: int = 0):
        self.n_features = n_features
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.n_nuisance = n_nuisance

    def _brain(self, X: np.ndarray) -> np.ndarray:
        """Brain features with missing values set to the training means and the training fit
        of the nuisance columns removed."""
        X = np.where(np.isnan(X), self.means_, X)
        if not self.n_nuisance:
            return X
        brain, nuisance = X[:, :-self.n_nuisance], X[:, -self.n_nuisance:]
        return brain - self.nuisance_.predict(nuisance) + self.nuisance_.intercept_

    def fit(self, X: np.ndarray, Y: np.ndarray) -> MultiviewCCA:
        self.means_ = np.nan_to_num(np.nanmean(X, axis=0))  # gaps: a parcel a run lacks
        X = np.where(np.isnan(X), self.means_, X)
        if self.n_nuisance:
            self.nuisance_ = LinearRegression().fit(X[:, -self.n_nuisance:],
                                                    X[:, :-self.n_nuisance])
        X = self._brain(X)
        self.x_scaler_ = StandardScaler().fit(X)
        self.y_scaler_ = StandardScaler().fit(Y)
        Xs, Ys = self.x_scaler_.transform(X), self.y_scaler_.transform(Y)
        self.selected_ = screen_features(Xs, Ys, self.n_features)
        components = min(self.n_components, Y.shape[1], len(self.selected_))
        self.cca_ = RidgeCCA(components, shrinkage=self.shrinkage).fit(
            [Xs[:, self.selected_], Ys])
        return self

    def transform(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Xs = self.x_scaler_.transform(self._brain(X))[:, self.selected_]
        brain, symptoms = self.cca_.transform([Xs, self.y_scaler_.transform(Y)])
        return brain, symptoms


def canonical_correlations(brain: np.ndarray, symptoms: np.ndarray) -> np.ndarray:
    """Pearson r between paired brain and symptom variates, per component."""
    return np.array([np.corrcoef(brain[:, c], symptoms[:, c])[0, 1]
                     for c in range(brain.shape[1])])


def out_of_sample_correlations(X: np.ndarray, Y: np.ndarray, model: MultiviewCCA,
                               n_folds: int, seed: int) -> np.ndarray:
    """Canonical correlations of held-out participants (folds x components), each fold's
    model fitted on the other folds (selection included)."""
    folds = KFold(n_folds, shuffle=True, random_state=seed)
    scores = []
    for train, test in folds.split(X):
        fitted = MultiviewCCA(**model.get_params()).fit(X[train], Y[train])
        scores.append(canonical_correlations(*fitted.transform(X[test], Y[test])))
    return np.array(scores)


def permutation_test(X: np.ndarray, Y: np.ndarray, model: MultiviewCCA, n_folds: int,
                     n_permutations: int, seed: int, blocks: np.ndarray | None = None
                     ) -> tuple[np.ndarray, float, np.ndarray]:
    """Held-out canonical correlations (folds x components); the p-value of their first
    component's mean against the same whole pipeline refitted on symptom rows permuted across
    participants within each of ``blocks`` (sites); and the null values."""
    from brainrep.predict import permute_within

    held_out = out_of_sample_correlations(X, Y, model, n_folds, seed)
    observed = held_out[:, 0].mean()
    rng = np.random.default_rng(seed)
    rows = np.arange(len(Y))
    null = np.array([out_of_sample_correlations(X, Y[permute_within(rows, blocks, rng)], model,
                                                n_folds, seed)[:, 0].mean()
                     for _ in range(n_permutations)])
    return held_out, (1 + np.sum(null >= observed)) / (1 + n_permutations), null


def held_out_symptom_checks(X: np.ndarray, Y: np.ndarray, symptoms: pd.DataFrame,
                            model: MultiviewCCA, k: int, seed: int,
                            method: str = "kmeans") -> dict[str, float]:
    """Symptom association of clusters that never saw the tested participants: the model
    and k clusters are fitted on a random half, the other half is assigned to the nearest
    discovery centroid in the brain canonical space, and its symptoms are tested against
    those assignments (:func:`brainrep.subtype.association_checks`)."""
    order = np.random.default_rng(seed).permutation(len(X))
    discovery, held = order[:len(X) // 2], order[len(X) // 2:]
    fitted = MultiviewCCA(**model.get_params()).fit(X[discovery], Y[discovery])
    brain = fitted.transform(X[discovery], Y[discovery])[0]
    found = cluster(brain, k, seed, method)
    centroids = np.stack([brain[found == c].mean(axis=0) for c in np.unique(found)])
    tested = fitted.transform(X[held], Y[held])[0]
    assigned = np.argmin(((tested[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    return {name.replace("_p_value", "_held_out_p_value"): p for name, p in
            association_checks(assigned, symptoms.iloc[held], seed=seed).items()}


def multiview_subtypes(features: pd.DataFrame, symptoms: pd.DataFrame,
                       covariates: pd.DataFrame, *, settings: MultiviewSettings,
                       subtyping: SubtypingSettings, seed: int,
                       sites: pd.Series | None = None) -> tuple[dict, pd.DataFrame]:
    """The whole Drysdale analysis on participants present in ``features`` and ``symptoms``
    (both indexed by participant_id): out-of-sample canonical correlations over the
    ``settings``' ``n_folds`` and their permutation p (``n_permutations``), then clusters in
    the brain canonical space by :func:`brainrep.subtype.find_subtypes` with the
    ``subtyping`` settings (k range, method, stability, null; nothing regressed out, one PCA
    dimension per canonical pair) and its checks against ``covariates``. With ``sites``
    (indexed by participant_id), site is regressed out inside every fit and symptoms are
    permuted within site.

    Symptom scores and site are not tested against the clusters in the same participants
    (the clusters were fitted on them); symptoms are tested on held-out participants
    (:func:`held_out_symptom_checks`). Returns the summary record and one row per
    participant (canonical variates, subtype).
    """
    model = MultiviewCCA(settings.n_features, settings.n_components, settings.shrinkage)
    n_folds, n_permutations = settings.n_folds, settings.n_permutations
    ids = features.index.intersection(symptoms.dropna().index)
    X = features.loc[ids].to_numpy(dtype=float)
    Y = symptoms.loc[ids].to_numpy(dtype=float)
    blocks = None
    if sites is not None:
        blocks = sites.loc[ids].astype(str).to_numpy()
        dummies = pd.get_dummies(blocks, drop_first=True, dtype=float).to_numpy()
        X = np.hstack([X, dummies])
        model = MultiviewCCA(**model.get_params() | {"n_nuisance": dummies.shape[1]})
    held_out, p_value, _ = permutation_test(X, Y, model, n_folds, n_permutations, seed, blocks)
    fitted = MultiviewCCA(**model.get_params()).fit(X, Y)
    brain, symptom_scores = fitted.transform(X, Y)
    canonical = pd.DataFrame(brain, index=ids,
                             columns=[f"brain_cv{c + 1}" for c in range(brain.shape[1])])
    fitted_on = list(symptoms.columns) + ([sites.name] if sites is not None else [])
    testable = [c for c in covariates.columns if c not in fitted_on]
    in_canonical_space = replace(subtyping, regress_out=(), n_components=brain.shape[1])
    summary, _, assignments = find_subtypes(canonical, covariates[testable],
                                            settings=in_canonical_space, seed=seed)
    summary |= held_out_symptom_checks(X, Y, symptoms.loc[ids], model, summary["k"], seed,
                                       subtyping.method)
    summary["not_tested"] = "; ".join(
        [f"{c}: the CCA was fitted on it (tested on held-out participants instead)"
         for c in symptoms.columns if c in covariates]
        + ([f"{sites.name}: regressed out before the CCA"] if sites is not None else []))
    in_sample = canonical_correlations(brain, symptom_scores)
    record = {"n_participants": len(ids), "n_brain_features": features.shape[1],
              "n_selected": len(fitted.selected_), "n_symptoms": Y.shape[1],
              **{f"r_in_sample_cv{c + 1}": r for c, r in enumerate(in_sample)},
              **{f"r_out_of_sample_cv{c + 1}": r for c, r in enumerate(held_out.mean(0))},
              "cca_p_value": p_value, "n_permutations": n_permutations,
              **{f"cluster_{key}": value for key, value in summary.items()}}
    scores = canonical.assign(**{f"symptom_cv{c + 1}": symptom_scores[:, c]
                                 for c in range(symptom_scores.shape[1])})
    scores["subtype"] = assignments.set_index("participant_id").loc[ids, "subtype"].to_numpy()
    return record, scores.reset_index()
