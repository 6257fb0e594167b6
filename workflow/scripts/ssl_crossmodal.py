import json
from pathlib import Path

import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl import model_card, pretrain_crossmodal
from brainrep.ssl.augment import sidecar_positions
from brainrep.ssl.checkpoints import load_weights
from brainrep.ssl.corpus import pretraining_windows
from brainrep.ssl.figures import loss_figure
from brainrep.ssl.settings import CrossModalSettings

log_to_file(snakemake.log[0])
settings = CrossModalSettings.from_config(snakemake.params.settings).for_modalities()
folds = pd.read_csv(snakemake.input.folds, sep="\t") if snakemake.input.folds else None
data = {modality: pretraining_windows(snakemake.wildcards.pretrain,
                                      tuple(snakemake.input[f"{modality}_cohort"]),
                                      list(snakemake.input[f"{modality}_corpus"]), folds,
                                      snakemake.params.datasets[modality])
        for modality in ("eeg", "fmri")}
eeg_sidecar = (list(snakemake.input.eeg_cohort) or list(snakemake.input.eeg_corpus))[2]
history = pretrain_crossmodal((data["eeg"].windows, data["eeg"].table),
                              (data["fmri"].windows, data["fmri"].table),
                              snakemake.output.model, sidecar_positions(eeg_sidecar),
                              settings=settings,
                              workers=snakemake.resources.loader_workers)
history.to_csv(snakemake.output.history, sep="\t", index=False)
loss_figure(history, "cross-modal", snakemake.output.figure)
checkpoint = load_weights(snakemake.output.model)
card = {modality: model_card(checkpoint, windows) for modality, windows in data.items()}
Path(snakemake.output.card).write_text(json.dumps(card, indent=1, default=str))
