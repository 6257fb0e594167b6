"""Dynamic brain states: a Gaussian HMM (hmmlearn) on PCA-reduced parcel time series.

Standardization per run, the PCA and the HMM are fitted on training participants only (one
model per outer fold); each participant's state sequence then gives fractional occupancy,
mean dwell time and switching rate, features for the prediction harness. Rows carry
``encoder_fold`` so that fold k's test participants are scored with fold k's model only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hmmlearn.hmm import GaussianHMM
from sklearn.decomposition import PCA

from brainrep.subtype.settings import StatesSettings


def _standardize(series: np.ndarray) -> np.ndarray:
    return (series - series.mean(axis=0)) / (series.std(axis=0) + 1e-8)


def fit_states(runs: list[np.ndarray], n_states: int, n_components: int,
               seed: int) -> tuple[PCA, GaussianHMM]:
    """PCA then a full-covariance Gaussian HMM on training runs, each (volumes, parcels)."""
    data = [_standardize(r) for r in runs]
    pca = PCA(min(n_components, data[0].shape[1]), random_state=seed).fit(np.vstack(data))
    reduced = [pca.transform(d) for d in data]
    hmm = GaussianHMM(n_states, covariance_type="full", n_iter=200, random_state=seed,
                      min_covar=1e-3)
    hmm.fit(np.vstack(reduced), lengths=[len(r) for r in reduced])
    return pca, hmm


def state_summaries(sequence: np.ndarray, n_states: int) -> dict[str, float]:
    """Fractional occupancy and mean dwell (volumes) per state, and switches per volume."""
    switches = np.flatnonzero(np.diff(sequence)) + 1
    bounds = np.r_[0, switches, len(sequence)]
    visit_states, visit_lengths = sequence[bounds[:-1]], np.diff(bounds)
    features = {}
    for state in range(n_states):
        features[f"occupancy_s{state}"] = float(np.mean(sequence == state))
        lengths = visit_lengths[visit_states == state]
        features[f"dwell_s{state}"] = float(lengths.mean()) if len(lengths) else 0.0
    features["switch_rate"] = len(switches) / max(len(sequence) - 1, 1)
    return features


def state_features(runs: list[np.ndarray], participants: list[str], *,
                   settings: StatesSettings, seed: int,
                   folds: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per participant (and per fold's model): state features averaged over runs,
    from the settings' ``n_states``-state HMM on ``n_components`` PCA dimensions.

    With ``folds`` (``participant_id``, ``fold``), model k is fitted without fold k's test
    participants; without, one model sees everyone (label the result transductive).
    """
    participants = np.asarray(participants)
    models = ({None: participants} if folds is None else
              {k: participants[~np.isin(participants, folds.loc[folds.fold == k,
                                                                 "participant_id"])]
               for k in sorted(folds["fold"].unique())})
    rows = []
    for fold, training in models.items():
        keep = np.isin(participants, training)
        pca, hmm = fit_states([r for r, k in zip(runs, keep, strict=True) if k],
                              settings.n_states, settings.n_components, seed)
        per_run = [state_summaries(hmm.predict(pca.transform(_standardize(r))),
                                   settings.n_states) for r in runs]
        table = pd.DataFrame(per_run).assign(participant_id=participants)
        table = table.groupby("participant_id", sort=True).mean().reset_index()
        if fold is not None:
            table["encoder_fold"] = fold
        rows.append(table)
    return pd.concat(rows, ignore_index=True)
