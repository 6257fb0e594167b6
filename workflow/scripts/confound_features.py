from brainrep.bids import read_participants
from brainrep.io import log_to_file, with_motion
from brainrep.predict import confound_table

log_to_file(snakemake.log[0])
participants = with_motion(read_participants(snakemake.input.participants),
                           list(snakemake.input.motion))
columns = snakemake.params.columns + (["mean_fd_mm"] if "mean_fd_mm" in participants else [])
confound_table(participants, columns).to_csv(snakemake.output[0], sep="\t", index=False)
