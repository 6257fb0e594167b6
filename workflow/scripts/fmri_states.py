import pandas as pd

from brainrep.io import log_to_file
from brainrep.states import state_features

log_to_file(snakemake.log[0])
status = pd.read_csv(snakemake.input.runs, sep="\t", keep_default_na=False)["status"]
kept = [i for i, value in enumerate(status) if value == "included"]
runs = [pd.read_csv(snakemake.input.timeseries[i], sep="\t").to_numpy(dtype=float)
        for i in kept]
settings = snakemake.params.settings
state_features(runs, [snakemake.params.participants[i] for i in kept], settings["n_states"],
               settings["n_components"], snakemake.params.seed,
               pd.read_csv(snakemake.input.folds, sep="\t")).to_csv(
    snakemake.output[0], sep="\t", index=False)
