import numpy as np
import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl.corpus import check_encoder_cohort
from brainrep.ssl.finetune import encoder_finetuned
from brainrep.ssl.probe import with_label
from brainrep.ssl.settings import FinetuneSettings

log_to_file(snakemake.log[0])
modality, encoder = snakemake.wildcards.modality, snakemake.wildcards.encoder
store = (snakemake.input.array, snakemake.input.table, snakemake.input.sidecar)
if snakemake.params.pretrain == ["corpus"]:  # refuse a cohort the corpus encoder has seen
    check_encoder_cohort(snakemake.input.cards[0], encoder, modality, store,
                         snakemake.params.dataset)
column = snakemake.params.column
table = with_label(pd.read_csv(snakemake.input.table, sep="\t"), column,
                   pd.read_csv(snakemake.input.participants, sep="\t", dtype=str),
                   snakemake.input.table, snakemake.input.participants)
encoder_finetuned(
    dict(zip(snakemake.params.pretrain, snakemake.input.models, strict=True)),
    np.load(snakemake.input.array, mmap_mode="r"), table, encoder, modality, label=column,
    n_splits=snakemake.params.n_splits, fractions=tuple(snakemake.params.fractions),
    folds=pd.read_csv(snakemake.input.folds, sep="\t") if snakemake.input.folds else None,
    settings=FinetuneSettings.from_config(snakemake.params.settings),
).to_csv(snakemake.output[0], sep="\t", index=False)
