from pathlib import Path

from brainrep.io import log_to_file
from brainrep.simulate import DemoSpec, simulate_dataset

log_to_file(snakemake.log[0])
spec = {k: v for k, v in snakemake.params.spec.items() if k != "enabled"}
simulate_dataset(Path(snakemake.params.root), DemoSpec(**spec))
