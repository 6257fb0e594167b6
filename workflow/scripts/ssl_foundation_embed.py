import json
from pathlib import Path

import numpy as np
import pandas as pd

from brainrep.io import log_to_file
from brainrep.ssl.foundation import foundation_embeddings
from brainrep.ssl.settings import FoundationSettings

log_to_file(snakemake.log[0])
per_window, per_participant, card = foundation_embeddings(
    np.load(snakemake.input.array, mmap_mode="r"), pd.read_csv(snakemake.input.table, sep="\t"),
    json.loads(Path(snakemake.input.sidecar).read_text()),
    settings=FoundationSettings(**snakemake.params.settings))  # model, weights, sha256, device
per_window.to_parquet(snakemake.output.windows, index=False)
per_participant.to_parquet(snakemake.output.participants, index=False)
Path(snakemake.output.card).write_text(json.dumps(card, indent=2))
