import logging

from brainrep.bids import read_participants
from brainrep.io import log_to_file
from brainrep.predict import participant_folds

log_to_file(snakemake.log[0])
folds = participant_folds(read_participants(snakemake.input[0]), snakemake.params.targets,
                          snakemake.params.n_folds, snakemake.params.seed)
n_folds = folds["fold"].nunique()
if n_folds != snakemake.params.n_folds:
    message = (f"{snakemake.input[0]}: the rarest class of {snakemake.params.targets[0]!r} allows "
               f"only {n_folds} folds")
    if snakemake.params.per_fold_encoders:  # one encoder per configured fold is planned
        raise ValueError(f"{message}; set downstream.outer_folds to {n_folds}")
    logging.warning("%s; using %d", message, n_folds)
folds.to_csv(snakemake.output[0], sep="\t", index=False)
