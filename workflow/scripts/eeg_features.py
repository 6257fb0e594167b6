import json

import numpy as np
import pandas as pd

from brainrep.eeg import band_power_table, covariance_table
from brainrep.io import log_to_file, sidecar_path

log_to_file(snakemake.log[0])
store = json.loads(sidecar_path(snakemake.input.array).read_text())
windows = np.load(snakemake.input.array, mmap_mode="r")
table = pd.read_csv(snakemake.input.table, sep="\t")
band_power_table(windows, table, store["channels"], store["sfreq_hz"],
                 snakemake.params.bands).to_csv(snakemake.output.bandpower, sep="\t",
                                                index=False)
covariance_table(windows, table, store["channels"]).to_csv(snakemake.output.riemann, sep="\t",
                                                           index=False)
