import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl import probe_table

log_to_file(snakemake.log[0])
column = snakemake.params.column
participants = pd.read_csv(snakemake.input.participants, sep="\t", dtype=str)
embeddings = {}
for encoder, path in zip(snakemake.params.encoders, snakemake.input.windows, strict=True):
    table = pd.read_parquet(path)
    if column not in table:
        if column not in participants:
            raise ValueError(f"ssl.probe.column {column!r} is in neither {path} nor "
                             f"{snakemake.input.participants}; name a column of either")
        table = table.merge(participants[["participant_id", column]], on="participant_id")
    embeddings[encoder] = table
folds = pd.read_csv(snakemake.input.folds, sep="\t") if snakemake.input.folds else None
probe_table(embeddings, column, snakemake.params.n_splits, folds=folds).to_csv(
    snakemake.output[0], sep="\t", index=False)
