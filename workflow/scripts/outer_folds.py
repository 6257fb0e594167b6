from brainrep.bids import read_participants
from brainrep.io import log_to_file
from brainrep.predict import participant_folds

log_to_file(snakemake.log[0])
folds = participant_folds(read_participants(snakemake.input[0]), snakemake.params.target,
                          snakemake.params.n_folds, snakemake.params.seed)
if folds["fold"].nunique() != snakemake.params.n_folds:
    raise ValueError(f"{snakemake.input[0]}: the rarest class of {snakemake.params.target!r} "
                     f"allows only {folds['fold'].nunique()} folds; set downstream.outer_folds "
                     "to that number")
folds.to_csv(snakemake.output[0], sep="\t", index=False)
