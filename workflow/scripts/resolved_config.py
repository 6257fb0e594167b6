from brainrep.config import write_config
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
write_config(dict(snakemake.params.config), snakemake.output[0])
