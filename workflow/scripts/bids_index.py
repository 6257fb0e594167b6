from brainrep.bids import write_index
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
write_index(snakemake.input.participants,
            {"eeg": snakemake.params.eeg, "bold": snakemake.params.bold,
             "timeseries": snakemake.params.timeseries},
            snakemake.output.recordings, snakemake.output.participants,
            snakemake.params.ignored, snakemake.output.ignored)
