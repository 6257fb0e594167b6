import numpy as np
import pandas as pd

from brainrep.io import log_to_file
from brainrep.plots import loss_figure
from brainrep.ssl import pretrain_crossmodal
from brainrep.ssl.augment import DEFAULTS, sidecar_positions

log_to_file(snakemake.log[0])
settings = dict(snakemake.params.settings)
for modality in ("eeg", "fmri"):
    settings[modality] = dict(settings[modality])
    settings[modality]["augmentations"] = (settings[modality]["augmentations"]
                                           or DEFAULTS[modality])
history = pretrain_crossmodal(
    (np.load(snakemake.input.eeg_array), pd.read_csv(snakemake.input.eeg_table, sep="\t")),
    (np.load(snakemake.input.fmri_array), pd.read_csv(snakemake.input.fmri_table, sep="\t")),
    settings, snakemake.output.model, sidecar_positions(snakemake.input.eeg_sidecar))
history.to_csv(snakemake.output.history, sep="\t", index=False)
loss_figure(history, "cross-modal", snakemake.output.figure)
