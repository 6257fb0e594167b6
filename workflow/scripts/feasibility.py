import pandas as pd

from brainrep.feasibility import COLUMNS
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
pd.DataFrame(list(snakemake.params.verdicts), columns=COLUMNS).to_csv(
    snakemake.output[0], sep="\t", index=False)
