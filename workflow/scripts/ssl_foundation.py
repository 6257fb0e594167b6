import json
from pathlib import Path

import numpy as np
import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl.foundation import foundation_stage
from brainrep.ssl.settings import FoundationSettings

log_to_file(snakemake.log[0])
label = snakemake.params.probe_column
table = pd.read_csv(snakemake.input.table, sep="\t")
if label and label not in table:  # a participant-level label (e.g. diagnosis)
    participants = pd.read_csv(snakemake.input.participants, sep="\t", dtype=str)
    table = table.merge(participants[["participant_id", label]], on="participant_id",
                        how="left")
per_window, per_participant, finetuned, card = foundation_stage(
    np.load(snakemake.input.array, mmap_mode="r"), table,
    json.loads(Path(snakemake.input.sidecar).read_text()),
    settings=FoundationSettings.from_config(snakemake.params.settings), label=label,
    folds=pd.read_csv(snakemake.input.folds, sep="\t") if snakemake.input.folds else None,
    n_splits=snakemake.params.n_splits)
per_window.to_parquet(snakemake.output.windows, index=False)
per_participant.to_parquet(snakemake.output.participants, index=False)
finetuned.to_csv(snakemake.output.finetuned, sep="\t", index=False)
Path(snakemake.output.card).write_text(json.dumps(card, indent=2))
