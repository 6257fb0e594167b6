import numpy as np
import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl import pretrain_crossmodal
from brainrep.ssl.augment import sidecar_positions
from brainrep.ssl.figures import loss_figure
from brainrep.ssl.settings import CrossModalSettings
from brainrep.ssl.train import pretraining_rows

log_to_file(snakemake.log[0])
settings = CrossModalSettings.from_config(snakemake.params.settings).for_modalities()
folds = pd.read_csv(snakemake.input.folds, sep="\t") if snakemake.input.folds else None
data = {}
for modality in ("eeg", "fmri"):
    table = pd.read_csv(snakemake.input[f"{modality}_table"], sep="\t")
    rows = pretraining_rows(table, snakemake.wildcards.pretrain, folds)
    data[modality] = (np.load(snakemake.input[f"{modality}_array"], mmap_mode="r")[rows],
                      table[rows].reset_index(drop=True))
history = pretrain_crossmodal(data["eeg"], data["fmri"], snakemake.output.model,
                              sidecar_positions(snakemake.input.eeg_sidecar), settings=settings)
history.to_csv(snakemake.output.history, sep="\t", index=False)
loss_figure(history, "cross-modal", snakemake.output.figure)
