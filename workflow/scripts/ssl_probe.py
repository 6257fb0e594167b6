import json

import numpy as np
import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl import probe_table
from brainrep.ssl.probe import eeg_window_features, per_fold

log_to_file(snakemake.log[0])
column = snakemake.params.column
participants = pd.read_csv(snakemake.input.participants, sep="\t", dtype=str)


def with_label(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """``table`` with the probed column, from itself or from participants.tsv."""
    if column in table:
        return table
    if column not in participants:
        raise ValueError(f"ssl.probe.column {column!r} is in neither {source} nor "
                         f"{snakemake.input.participants}; name a column of either")
    return table.merge(participants[["participant_id", column]], on="participant_id")


embeddings = {encoder: with_label(pd.read_parquet(path), path) for encoder, path in
              zip(snakemake.params.encoders, snakemake.input.windows, strict=True)}
folds = pd.read_csv(snakemake.input.folds, sep="\t") if snakemake.input.folds else None
if snakemake.wildcards.modality == "eeg":  # the classical features of the same windows
    store = json.loads(open(snakemake.input.sidecar).read())
    classical = eeg_window_features(np.load(snakemake.input.array, mmap_mode="r"),
                                    pd.read_csv(snakemake.input.table, sep="\t"),
                                    store["sfreq_hz"], snakemake.params.bands)
    for name, table in classical.items():
        table = with_label(table, snakemake.input.table)
        embeddings[name] = per_fold(table, folds) if folds is not None else table
finetuned = None
if snakemake.input.foundation:  # a published model, frozen; and its fine-tuned row
    windows, finetuned = snakemake.input.foundation
    table = with_label(pd.read_parquet(windows), windows)
    embeddings["foundation"] = per_fold(table, folds) if folds is not None else table
probes = probe_table(embeddings, column, snakemake.params.n_splits, folds=folds)
if finetuned and len(finetuned_rows := pd.read_csv(finetuned, sep="\t")):
    probes = pd.concat([probes, finetuned_rows], ignore_index=True)
probes.to_csv(snakemake.output[0], sep="\t", index=False)
