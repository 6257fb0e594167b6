from brainrep.exclusions import excluding
from brainrep.fmri import connectivity_from_timeseries
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
with excluding(snakemake.input[0], list(snakemake.output), "fmri_connectivity",
               snakemake.config["on_error"]):
    connectivity_from_timeseries(snakemake.input[0], snakemake.output[0], snakemake.params.kind)
