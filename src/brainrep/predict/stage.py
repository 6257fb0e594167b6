"""The prediction stage of one target, one feature table at a time."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from brainrep.io import feature_participants, read_features
from brainrep.predict.crossval import evaluate
from brainrep.predict.curves import label_efficiency, site_probe
from brainrep.predict.models import FOLD_COLUMN
from brainrep.predict.ondisk import TableOnDisk
from brainrep.predict.settings import PredictionSettings


@dataclass
class TargetResults:
    """The tables of :func:`predict_target`: :func:`evaluate`'s metrics, out-of-fold
    predictions and splits, :func:`site_probe` (empty without a site column) and
    :func:`label_efficiency`."""

    metrics: pd.DataFrame
    predictions: pd.DataFrame
    splits: pd.DataFrame
    site_probe: pd.DataFrame
    label_efficiency: pd.DataFrame


def predict_target(tables: Mapping[str, str | Path], participants: pd.DataFrame,
                   target: str, *, settings: PredictionSettings,
                   folds: pd.DataFrame | None = None, n_jobs: int = 1,
                   finetuned: Collection[str] = ()) -> TargetResults:
    """:func:`evaluate`, :func:`site_probe` and :func:`label_efficiency` of every feature
    table (name -> path), each read once and dropped before the next is read: memory holds
    a fold's design of one table (the table's values wait on disk, :class:`TableOnDisk`,
    unless it was embedded per fold), whatever the number of feature sets. Every table is
    evaluated on the participants all of them have (their ``participant_id`` columns are
    read first), so the tables are those of one call with every feature set in memory, in
    the same row order.

    ``finetuned`` names the tables of encoders fine-tuned with this target's labels of every
    training participant: the label-efficiency curve has them at fraction 1 only (a smaller
    fraction would fit the probe on fewer labels than the encoder has seen).
    """
    if not tables:
        raise ValueError("no feature table to predict from; enable a modality (eeg, fmri) "
                         "or give downstream.confounds")
    among = set.intersection(*(set(feature_participants(path)) for path in tables.values()))
    scores_seen: dict[tuple, np.ndarray] = {}  # evaluate's scores, label efficiency's at 1
    parts: dict[str, list[pd.DataFrame]] = {field.name: [] for field in fields(TargetResults)}
    every_label = replace(settings, label_fractions=tuple(
        f for f in settings.label_fractions if f == 1.0))  # the curve of fine-tuned sets
    for name, path in tables.items():
        table = read_features(path)
        with (nullcontext(table) if FOLD_COLUMN in table else TableOnDisk(table)) as stored:
            del table  # its values are on disk now, unless it was embedded per fold
            features = {name: stored}
            metrics, predictions, splits = evaluate(features, participants, target,
                                                    settings=settings, folds=folds,
                                                    n_jobs=n_jobs, among=among,
                                                    scores_seen=scores_seen)
            probe = (site_probe(features, participants, settings=settings, folds=folds,
                                n_jobs=n_jobs) if settings.site_column else pd.DataFrame())
            curve = label_efficiency(features, participants, target,
                                     settings=every_label if name in finetuned else settings,
                                     folds=folds, n_jobs=n_jobs, among=among,
                                     scores_seen=scores_seen)
            del features, stored  # before the next table is read
        scores_seen.clear()
        for field, table in zip(parts, (metrics, predictions, splits, probe, curve),
                                strict=True):
            parts[field].append(table)
    # evaluate orders its rows by scheme, then feature set: so do the joined tables
    schemes = {scheme: rank for rank, scheme in enumerate(parts["splits"][0]["cv_scheme"]
                                                          .unique())}
    by_scheme = {field: pd.concat(parts[field], ignore_index=True)
                 .sort_values("cv_scheme", key=lambda column: column.map(schemes),
                              kind="stable", ignore_index=True)
                 for field in ("metrics", "predictions")}
    return TargetResults(**by_scheme, splits=parts["splits"][0],
                         site_probe=pd.concat(parts["site_probe"], ignore_index=True),
                         label_efficiency=pd.concat(parts["label_efficiency"],
                                                    ignore_index=True))
