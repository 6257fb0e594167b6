from brainrep.fmri import connectivity_from_timeseries
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
connectivity_from_timeseries(snakemake.input[0], snakemake.output[0], snakemake.params.kind)
