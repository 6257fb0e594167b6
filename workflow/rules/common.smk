# Lists of per-recording outputs and feature tables, derived from the validated config.


def eeg_outputs(pattern):
    return [pattern.format(subject=r.subject, entities=r.entities) for r in INPUTS.eeg]


def bold_outputs(pattern):
    return [pattern.format(subject=r.subject, entities=r.entities) for r in INPUTS.bold]


def recording(records, wildcards):
    """The source file of the recording named by the job's wildcards."""
    key = f"sub-{wildcards.subject}_{wildcards.entities}"
    return next(r.path for r in records if r.key == key)


EEG_EPOCHS = f"{OUT}/sub-{{subject}}/eeg/sub-{{subject}}_{{entities}}_epo.fif"
FMRI_RELMAT = (
    f"{OUT}/sub-{{subject}}/func/sub-{{subject}}_{{entities}}_seg-{ATLAS}_stat-{KIND}_relmat.tsv"
)
FMRI_TIMESERIES = (
    f"{OUT}/sub-{{subject}}/func/sub-{{subject}}_{{entities}}_seg-{ATLAS}_stat-mean_timeseries.tsv"
)
MODALITIES = [m for m, recs in (("eeg", INPUTS.eeg), ("fmri", INPUTS.bold)) if recs]
FEATURES = {"confounds": f"{OUT}/group/features/confounds.tsv"}
if INPUTS.eeg:
    FEATURES["eeg_bandpower"] = f"{OUT}/group/features/eeg_bandpower.tsv"
if INPUTS.bold:
    FEATURES["fmri_connectivity"] = f"{OUT}/group/features/fmri_connectivity.tsv"
for _modality in MODALITIES:
    for _encoder in ("ssl", "random"):
        FEATURES[f"{_encoder}_{_modality}"] = (
            f"{OUT}/group/ssl/modality-{_modality}_encoder-{_encoder}_participants.parquet"
        )
