import numpy as np
import pandas as pd

from brainrep.io import log_to_file
from brainrep.plots import loss_figure
from brainrep.ssl import pretrain

log_to_file(snakemake.log[0])
table = pd.read_csv(snakemake.input.table, sep="\t")
history = pretrain(np.load(snakemake.input.array), table["participant_id"].to_numpy(),
                   dict(snakemake.params.settings), snakemake.output.model)
history.to_csv(snakemake.output.history, sep="\t", index=False)
loss_figure(history, snakemake.params.settings["objective"], snakemake.output.figure)
