"""Linear probe: how well a frozen embedding separates a label, split by participant."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def with_label(table: pd.DataFrame, column: str, participants: pd.DataFrame, source: str,
               participants_source: str) -> pd.DataFrame:
    """``table`` (one row per window, read from ``source``) with the probed ``column``: its
    own, or that of ``participants`` (participants.tsv, read from ``participants_source``;
    windows of participants it lacks get none, and the probe leaves them out). Rows stay one
    per window, in order."""
    if column in table:
        return table
    if column not in participants:
        raise ValueError(f"ssl.probe.column {column!r} is in neither {source} nor "
                         f"{participants_source}; name a column of either")
    return table.merge(participants[["participant_id", column]], on="participant_id",
                       how="left", validate="many_to_one")


def labelled(embeddings: pd.DataFrame, label: str) -> pd.DataFrame:
    """Rows whose ``label`` is present (neither missing nor ``n/a``)."""
    rows = embeddings.dropna(subset=[label])
    return rows[rows[label].astype(str) != "n/a"]


def linear_probe(embeddings: pd.DataFrame, label: str, n_splits: int = 5, seed: int = 0,
                 folds: pd.DataFrame | None = None, fraction: float = 1.0) -> np.ndarray:
    """Balanced accuracy per fold of a standardized logistic regression on ``emb_*`` columns.

    Rows are windows or participants; folds never split a participant (StratifiedGroupKFold
    on ``participant_id``), so windows of one person are never on both sides. Rows whose
    label is missing are dropped. Embeddings from encoders pretrained per fold (column
    ``encoder_fold``) are probed on those ``folds``, fold k with encoder k's rows only. With
    ``fraction`` < 1 only that fraction of each split's training participants keep their
    label (:func:`fewer_labels`).
    """
    rows = labelled(embeddings, label)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    if "encoder_fold" in rows:  # each split its own encoder's rows
        tables, splits = [], []
        for fold, table in rows.groupby("encoder_fold", sort=True):
            table = table.reset_index(drop=True)
            test = table["participant_id"].isin(folds.loc[folds["fold"] == fold,
                                                          "participant_id"]).to_numpy()
            tables.append(table)
            splits.append((np.flatnonzero(~test), np.flatnonzero(test)))
    else:
        splits = probe_splits(rows, label, n_splits, seed)
        tables = [rows] * len(splits)
    data = {id(table): (table.filter(regex=r"^emb_\d+$").to_numpy(),
                        table[label].astype(str).to_numpy()) for table in tables}
    scores = []
    for k, (table, (train, test)) in enumerate(zip(tables, splits, strict=True)):
        X, y = data[id(table)]
        train = fewer_labels(table, label, train, k, fraction, seed)
        probe.fit(X[train], y[train])
        scores.append(balanced_accuracy_score(y[test], probe.predict(X[test])))
    return np.array(scores)


def probe_splits(rows: pd.DataFrame, label: str, n_splits: int = 5, seed: int = 0,
                 folds: pd.DataFrame | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training, test) positions in ``rows`` (labelled windows) of every probe split: the
    outer ``folds``' test participants when given, else a StratifiedGroupKFold on
    ``participant_id`` (never a participant on both sides)."""
    participants = rows["participant_id"].to_numpy()
    if folds is not None:
        return [(np.flatnonzero(~test), np.flatnonzero(test)) for test in
                (np.isin(participants, folds.loc[folds["fold"] == k, "participant_id"])
                 for k in sorted(folds["fold"].unique()))]
    n_splits = min(n_splits, *rows.groupby(label)["participant_id"].nunique())
    if n_splits < 2:
        raise ValueError(f"linear probe on {label!r} needs at least two participants per class")
    splitter = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(rows, rows[label].astype(str).to_numpy(), groups=participants))


def fewer_labels(rows: pd.DataFrame, label: str, train: np.ndarray, split: int,
                 fraction: float, seed: int) -> np.ndarray:
    """The ``train`` positions of ``rows`` (labelled windows) of a random ``fraction`` of
    their participants, stratified on the labels each participant has (two or more
    participants per stratum); all of them at ``fraction`` 1. The subset depends only on those
    participants, their labels, the ``split``'s number, the fraction and ``seed``: every
    encoder, frozen or fine-tuned, gets the same."""
    if fraction >= 1:
        return train
    from brainrep.predict.splits import stratified_subset

    participants = rows["participant_id"].to_numpy()
    labels = rows[label].astype(str).iloc[train].groupby(participants[train]).agg(
        lambda values: "|".join(sorted(set(values))))  # sorted by participant
    rng = np.random.default_rng([seed, split, round(fraction * 1e6)])
    kept = labels.index.to_numpy()[stratified_subset(labels.to_numpy(), fraction, rng)]
    return train[np.isin(participants[train], kept)]


def probe_row(name: str, table: pd.DataFrame, label: str, scores: np.ndarray,
              fraction: float = 1.0) -> dict:
    """The probe table's row of ``name``: balanced accuracy over the splits (mean and SD)
    of its labelled rows of ``table``, with a ``fraction`` of training participants
    labelled."""
    rows = labelled(table, label)
    return {"encoder": name, "label": label, "metric": "balanced_accuracy",
            "mean": scores.mean(), "sd": scores.std(), "n_folds": len(scores),
            "n_rows": len(rows), "n_participants": rows["participant_id"].nunique(),
            "pretraining": table["pretraining"].iloc[0], "fraction": fraction}


def probe_table(embeddings: dict[str, pd.DataFrame], label: str, n_splits: int = 5,
                seed: int = 0, folds: pd.DataFrame | None = None,
                fractions: tuple[float, ...] = (1.0,)) -> pd.DataFrame:
    """One row per named embedding (e.g. ``ssl``, ``random``, or classical window features
    from :func:`eeg_window_features`) and labelled ``fractions`` of the training
    participants: mean and SD over folds; the same windows get the same splits."""
    return pd.DataFrame([probe_row(name, table, label,
                                   linear_probe(table, label, n_splits, seed, folds, fraction),
                                   fraction)
                         for name, table in embeddings.items() for fraction in fractions])


def eeg_window_features(windows: np.ndarray, table: pd.DataFrame, sfreq: float,
                        bands: dict[str, list[float]]) -> dict[str, pd.DataFrame]:
    """The classical features of every EEG window (n_windows, channels, times), as tables the
    probe reads beside the encoders' (``table``'s columns plus ``emb_*``): ``bandpower``, the
    log10 band power of each channel and band (the ``eeg_bandpower`` features per window), and
    ``riemann``, the matrix logarithm of each window's Ledoit-Wolf channel covariance (upper
    triangle; the log-Euclidean map at the identity, so nothing is fitted across windows).
    """
    from sklearn.covariance import ledoit_wolf

    from brainrep.eeg.features import band_power

    power = band_power(windows, sfreq, bands).reshape(len(windows), -1)
    upper = np.triu_indices(windows.shape[1])
    logs = []
    for window in windows:
        values, vectors = np.linalg.eigh(ledoit_wolf(np.asarray(window, dtype=float).T)[0])
        logs.append((vectors * np.log(values)) @ vectors.T)
    riemann = np.stack(logs)[:, upper[0], upper[1]]
    return {name: pd.concat([table.reset_index(drop=True),
                             pd.DataFrame(values, columns=[f"emb_{i}" for i in
                                                           range(values.shape[1])])],
                            axis=1).assign(pretraining="n/a")
            for name, values in (("bandpower", power), ("riemann", riemann))}


def per_fold(table: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """``table`` once per outer fold (column ``encoder_fold``), for probing features that
    need no pretraining on the folds the per-fold encoders are probed on."""
    return pd.concat([table.assign(encoder_fold=k) for k in sorted(folds["fold"].unique())],
                     ignore_index=True)
