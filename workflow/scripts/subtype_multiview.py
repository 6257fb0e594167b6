import logging
import sys

import pandas as pd

from brainrep.bids import read_participants
from brainrep.io import log_to_file, read_features, with_motion
from brainrep.subtype import MultiviewStageSettings, add_fdr, multiview_subtypes

log_to_file(snakemake.log[0])
settings = MultiviewStageSettings.from_config(snakemake.params.settings)
cfg, subtyping = settings.multiview, settings.subtyping
participants = with_motion(read_participants(snakemake.input.participants),
                           list(snakemake.input.motion)).set_index("participant_id")
missing = [c for c in cfg.symptoms if c not in participants]
if missing:
    raise KeyError(f"{snakemake.input.participants} has no column(s) {missing}; fix "
                   "downstream.multiview.symptoms or set downstream.multiview.enabled: false")
population = subtyping.population(participants)
features = read_features(snakemake.input.features).set_index("participant_id")
features = features.loc[features.index.intersection(population)]
symptoms = participants.loc[features.index, list(cfg.symptoms)].dropna()
if len(symptoms) < 3 * cfg.n_folds:  # too few for held-out canonical correlations
    logging.warning("multiview: %d participants with features and symptoms, fewer than 3 x "
                    "n_folds", len(symptoms))
    pd.DataFrame([{"feature_set": cfg.feature_set, "n_participants": len(symptoms),
                   "status": f"not run: fewer than {3 * cfg.n_folds} participants"}]).to_csv(
        snakemake.output.summary, sep="\t", index=False)
    pd.DataFrame(columns=["participant_id"]).to_csv(snakemake.output.scores, sep="\t",
                                                    index=False)
    sys.exit(0)
checks = subtyping.checks(participants)
site = settings.site_column
summary, scores = multiview_subtypes(
    features, participants[list(cfg.symptoms)], participants[checks], settings=cfg,
    subtyping=subtyping, seed=settings.seed, sites=participants[site] if site else None)
summary = {"feature_set": cfg.feature_set, "symptoms": ";".join(cfg.symptoms),
           "status": "done", **summary}
add_fdr(pd.DataFrame([summary]), exclude=("cca_p_value", "cluster_null_p_value")).to_csv(
    snakemake.output.summary, sep="\t", index=False, na_rep="n/a")
scores.to_csv(snakemake.output.scores, sep="\t", index=False)
