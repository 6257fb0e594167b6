import numpy as np
import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl import embed_folds
from brainrep.ssl.corpus import check_encoder_cohort

log_to_file(snakemake.log[0])
modality, encoder = snakemake.wildcards.modality, snakemake.wildcards.encoder
if snakemake.params.pretrain == ["corpus"]:  # refuse a cohort the corpus encoder has seen
    check_encoder_cohort(snakemake.input.cards[0], encoder, modality,
                         (snakemake.input.array, snakemake.input.table, snakemake.input.sidecar),
                         snakemake.params.dataset)
per_window, per_participant = embed_folds(
    list(snakemake.input.models), snakemake.params.pretrain,
    np.load(snakemake.input.array, mmap_mode="r"), pd.read_csv(snakemake.input.table, sep="\t"),
    encoder, modality)
per_window.to_parquet(snakemake.output.windows, index=False)
per_participant.to_parquet(snakemake.output.participants, index=False)
