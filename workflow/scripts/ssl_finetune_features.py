import json
from pathlib import Path

import numpy as np
import pandas as pd

from brainrep.bids import read_participants
from brainrep.io import log_to_file
from brainrep.ssl.corpus import check_encoder_cohort
from brainrep.ssl.finetune import encoder_loader, finetuned_embeddings
from brainrep.ssl.settings import FinetuneSettings, FoundationSettings, finetuned_pretraining

log_to_file(snakemake.log[0])
modality, encoder = snakemake.wildcards.modality, snakemake.wildcards.encoder
store = (snakemake.input.array, snakemake.input.table, snakemake.input.sidecar)
windows = np.load(snakemake.input.array, mmap_mode="r")
table = pd.read_csv(snakemake.input.table, sep="\t")
labels = read_participants(snakemake.input.participants).set_index("participant_id")[
    snakemake.wildcards.target]
folds = pd.read_csv(snakemake.input.folds, sep="\t")
settings = FinetuneSettings.from_config(snakemake.params.settings)
if encoder == "foundation":
    from brainrep.ssl.foundation import foundation_finetuned_embeddings

    features = foundation_finetuned_embeddings(
        windows, table, json.loads(Path(snakemake.input.sidecar).read_text()), labels, folds,
        settings=FoundationSettings(**snakemake.params.foundation), finetuning=settings)
else:
    if snakemake.params.pretrain == ["corpus"]:  # refuse a cohort the corpus encoder has seen
        check_encoder_cohort(snakemake.input.cards[0], encoder, modality, store,
                             snakemake.params.dataset)
    checkpoints = dict(zip(snakemake.params.pretrain, snakemake.input.models, strict=True))
    features = finetuned_embeddings(
        encoder_loader(checkpoints, encoder, modality, folds, folds["fold"].nunique()),
        windows, table, labels, folds, settings=settings, encoder=encoder,
        pretraining=finetuned_pretraining(encoder, sorted(checkpoints)))
features.to_parquet(snakemake.output[0], index=False)
