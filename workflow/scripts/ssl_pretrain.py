import numpy as np
import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl import pretrain
from brainrep.ssl.augment import sidecar_positions
from brainrep.ssl.figures import loss_figure
from brainrep.ssl.settings import SSLSettings
from brainrep.ssl.train import pretraining_rows

log_to_file(snakemake.log[0])
modality = snakemake.wildcards.modality
settings = SSLSettings.from_config(snakemake.params.settings).for_modality(modality)
table = pd.read_csv(snakemake.input.table, sep="\t")
folds = pd.read_csv(snakemake.input.folds, sep="\t") if snakemake.input.folds else None
rows = pretraining_rows(table, snakemake.wildcards.pretrain, folds)
windows = np.load(snakemake.input.array, mmap_mode="r")[rows]  # reads only these rows
history = pretrain(windows, table[rows].reset_index(drop=True), snakemake.output.model,
                   sidecar_positions(snakemake.input.sidecar), settings=settings)
history.to_csv(snakemake.output.history, sep="\t", index=False)
loss_figure(history, settings.objective, snakemake.output.figure)
