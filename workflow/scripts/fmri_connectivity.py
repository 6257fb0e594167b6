from brainrep.fmri import connectivity_batch
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
connectivity_batch(list(snakemake.input), list(snakemake.output), snakemake.params.kind,
                   snakemake.config["on_error"])
