import logging
from pathlib import Path

from brainrep.cache import Item, prefetch
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
manifest = prefetch([Item(**item) for item in snakemake.params.needed],
                    Path(snakemake.output[0]).parent)
logging.info("cached:\n%s", manifest.to_string(index=False))
