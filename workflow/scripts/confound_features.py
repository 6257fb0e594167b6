from brainrep.bids import read_participants
from brainrep.io import log_to_file
from brainrep.predict import confound_table

log_to_file(snakemake.log[0])
confound_table(read_participants(snakemake.input[0]), snakemake.params.columns).to_csv(
    snakemake.output[0], sep="\t", index=False)
