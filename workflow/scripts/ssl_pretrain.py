import json
from pathlib import Path

import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl import model_card, pretrain
from brainrep.ssl.augment import sidecar_positions
from brainrep.ssl.checkpoints import load_weights
from brainrep.ssl.corpus import pretraining_windows
from brainrep.ssl.figures import loss_figure
from brainrep.ssl.settings import SSLSettings

log_to_file(snakemake.log[0])
modality = snakemake.wildcards.modality
settings = SSLSettings.from_config(snakemake.params.settings).for_modality(modality)
folds = pd.read_csv(snakemake.input.folds, sep="\t") if snakemake.input.folds else None
stores = list(snakemake.input.cohort) or list(snakemake.input.corpus)
data = pretraining_windows(snakemake.wildcards.pretrain, tuple(snakemake.input.cohort),
                           list(snakemake.input.corpus), folds, snakemake.params.datasets)
history = pretrain(data.windows, data.table, snakemake.output.model,
                   sidecar_positions(stores[2]), settings=settings,
                   workers=snakemake.resources.loader_workers)
history.to_csv(snakemake.output.history, sep="\t", index=False)
loss_figure(history, settings.objective, snakemake.output.figure)
card = model_card(load_weights(snakemake.output.model), data)
Path(snakemake.output.card).write_text(json.dumps(card, indent=1, default=str))
