import json

import numpy as np
import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl import probe_table
from brainrep.ssl.figures import probe_figure
from brainrep.ssl.probe import eeg_window_features, labelled, per_fold, with_label

log_to_file(snakemake.log[0])
column = snakemake.params.column
participants = pd.read_csv(snakemake.input.participants, sep="\t", dtype=str)


def labelled_table(table: pd.DataFrame, source: str) -> pd.DataFrame:
    return with_label(table, column, participants, source, snakemake.input.participants)


embeddings = {encoder: labelled_table(pd.read_parquet(path), path) for encoder, path in
              zip(snakemake.params.encoders, snakemake.input.windows, strict=True)}
folds = pd.read_csv(snakemake.input.folds, sep="\t") if snakemake.input.folds else None
if snakemake.wildcards.modality == "eeg":  # the classical features of the same windows
    store = json.loads(open(snakemake.input.sidecar).read())
    classical = eeg_window_features(np.load(snakemake.input.array, mmap_mode="r"),
                                    pd.read_csv(snakemake.input.table, sep="\t"),
                                    store["sfreq_hz"], snakemake.params.bands)
    for name, table in classical.items():
        table = labelled_table(table, snakemake.input.table)
        embeddings[name] = per_fold(table, folds) if folds is not None else table
if snakemake.input.foundation:  # a published model, frozen
    table = labelled_table(pd.read_parquet(snakemake.input.foundation),
                           snakemake.input.foundation)
    embeddings["foundation"] = per_fold(table, folds) if folds is not None else table
probes = probe_table(embeddings, column, snakemake.params.n_splits, snakemake.params.seed,
                     folds=folds, fractions=tuple(snakemake.params.fractions))
# and the encoders fine-tuned inside the same splits
probes = pd.concat([probes, *(pd.read_csv(path, sep="\t") for path in snakemake.input.finetuned)],
                   ignore_index=True)
probes.to_csv(snakemake.output.table, sep="\t", index=False)
probe_figure(probes, labelled(next(iter(embeddings.values())), column)[column].nunique(),
             snakemake.output.figure)
