import numpy as np
import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl import embed_folds

log_to_file(snakemake.log[0])
per_window, per_participant = embed_folds(
    list(snakemake.input.models), snakemake.params.pretrain,
    np.load(snakemake.input.array, mmap_mode="r"), pd.read_csv(snakemake.input.table, sep="\t"),
    snakemake.wildcards.encoder, snakemake.wildcards.modality)
per_window.to_parquet(snakemake.output.windows, index=False)
per_participant.to_parquet(snakemake.output.participants, index=False)
