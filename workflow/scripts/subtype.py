import pandas as pd

from brainrep.bids import read_participants
from brainrep.io import log_to_file, read_features, with_motion
from brainrep.subtype import (
    SubtypeStageSettings,
    add_fdr,
    fill_gaps,
    find_subtypes,
    profiles_figure,
    stability_figure,
    subtype_profiles,
)

log_to_file(snakemake.log[0])
settings = SubtypeStageSettings.from_config(snakemake.params.settings)
subtyping = settings.subtyping
participants = with_motion(read_participants(snakemake.input.participants),
                           list(snakemake.input.motion)).set_index("participant_id")
population = subtyping.population(participants)
checks = subtyping.checks(participants)
covariates = participants[list(dict.fromkeys([*subtyping.regress_out, *checks]))]
summaries, stabilities, assignments, profiles = [], [], [], []
for name, path in zip(snakemake.params.names, snakemake.input.features, strict=True):
    features = read_features(path).set_index("participant_id")
    features = fill_gaps(features.loc[features.index.intersection(population)])
    summary, stability, labels = find_subtypes(features, covariates, settings=subtyping,
                                               seed=settings.seed)
    summaries.append({"feature_set": name, **summary})
    stabilities.append(stability.assign(feature_set=name))
    assignments.append(labels.assign(feature_set=name))
    profiles.append(subtype_profiles(features, participants[checks], labels).assign(
        feature_set=name))
add_fdr(pd.DataFrame(summaries), exclude=("null_p_value",)).to_csv(
    snakemake.output.summary, sep="\t", index=False, na_rep="n/a")
stability = pd.concat(stabilities)
stability.to_csv(snakemake.output.stability, sep="\t", index=False)
pd.concat(assignments).to_csv(snakemake.output.assignments, sep="\t", index=False)
stability_figure(stability, snakemake.output.figure)
profiles = pd.concat(profiles)
profiles.to_csv(snakemake.output.profiles, sep="\t", index=False, na_rep="n/a")
profiles_figure(profiles, snakemake.output.profiles_figure)
