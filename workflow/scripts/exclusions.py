import pandas as pd

from brainrep.bids import read_participants
from brainrep.exclusions import study_ledger
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
ledgers = [pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)
           for path in snakemake.input.ledgers]
study_ledger(ledgers, read_participants(snakemake.input.participants),
             list(snakemake.params.targets)).to_csv(snakemake.output[0], sep="\t", index=False)
