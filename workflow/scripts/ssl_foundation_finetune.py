import json
from pathlib import Path

import numpy as np
import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl.foundation import foundation_finetuned
from brainrep.ssl.probe import with_label
from brainrep.ssl.settings import FinetuneSettings, FoundationSettings

log_to_file(snakemake.log[0])
column = snakemake.params.column
table = with_label(pd.read_csv(snakemake.input.table, sep="\t"), column,
                   pd.read_csv(snakemake.input.participants, sep="\t", dtype=str),
                   snakemake.input.table, snakemake.input.participants)
foundation_finetuned(
    np.load(snakemake.input.array, mmap_mode="r"), table,
    json.loads(Path(snakemake.input.sidecar).read_text()),
    settings=FoundationSettings(**snakemake.params.settings),
    finetuning=FinetuneSettings.from_config(snakemake.params.finetuning), label=column,
    n_splits=snakemake.params.n_splits, fractions=tuple(snakemake.params.fractions),
    folds=pd.read_csv(snakemake.input.folds, sep="\t") if snakemake.input.folds else None,
).to_csv(snakemake.output[0], sep="\t", index=False)
