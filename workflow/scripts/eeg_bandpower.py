import json

import numpy as np
import pandas as pd

from brainrep.eeg import band_power_table
from brainrep.io import log_to_file, sidecar_path

log_to_file(snakemake.log[0])
store = json.loads(sidecar_path(snakemake.input.array).read_text())
band_power_table(np.load(snakemake.input.array, mmap_mode="r"),
                 pd.read_csv(snakemake.input.table, sep="\t"), store["channels"],
                 store["sfreq_hz"], snakemake.params.bands).to_csv(
    snakemake.output[0], sep="\t", index=False)
