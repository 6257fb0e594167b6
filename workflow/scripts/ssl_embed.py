import numpy as np
import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl import embed_windows

log_to_file(snakemake.log[0])
crossmodal = snakemake.wildcards.encoder == "crossmodal"
per_window, per_participant = embed_windows(
    snakemake.input.model, np.load(snakemake.input.array, mmap_mode="r"),
    pd.read_csv(snakemake.input.table, sep="\t"), "ssl" if crossmodal else
    snakemake.wildcards.encoder, name=snakemake.wildcards.modality if crossmodal else "encoder")
for table in (per_window, per_participant):
    table["encoder"] = snakemake.wildcards.encoder
per_window.to_parquet(snakemake.output.windows, index=False)
per_participant.to_parquet(snakemake.output.participants, index=False)
