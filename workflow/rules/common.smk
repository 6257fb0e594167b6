# Lists of per-recording outputs and feature tables, derived from the validated config.


def eeg_outputs(pattern):
    return [pattern.format(subject=r.subject, entities=r.entities) for r in INPUTS.eeg]


# fMRI runs enter as preprocessed BOLD (parcellated here) or as parcellated time series.
FMRI_RUNS = INPUTS.bold or INPUTS.timeseries


def fmri_outputs(pattern):
    return [pattern.format(subject=r.subject, entities=r.entities) for r in FMRI_RUNS]


def recording(records, wildcards):
    """The source file of the recording named by the job's wildcards."""
    key = f"sub-{wildcards.subject}_{wildcards.entities}"
    return next(r.path for r in records if r.key == key)


EEG_EPOCHS = f"{OUT}/sub-{{subject}}/eeg/sub-{{subject}}_{{entities}}_epo.fif"
EEG_PSD_FIGURE = (
    f"{OUT}/sub-{{subject}}/figures/sub-{{subject}}_{{entities}}_desc-psd_eeg.png"
)
FMRI_RELMAT = (
    f"{OUT}/sub-{{subject}}/func/sub-{{subject}}_{{entities}}_seg-{ATLAS}_stat-{KIND}_relmat.tsv"
)
FMRI_TIMESERIES = (
    f"{OUT}/sub-{{subject}}/func/sub-{{subject}}_{{entities}}_seg-{ATLAS}_stat-mean_timeseries.tsv"
)
FMRI_STATES = f"{OUT}/group/features/fmri_states.tsv"
FMRI_SERIES = [r.path for r in INPUTS.timeseries] or fmri_outputs(FMRI_TIMESERIES)
MODALITIES = [m for m, recs in (("eeg", INPUTS.eeg), ("fmri", FMRI_RUNS)) if recs]
FEATURES = {"confounds": f"{OUT}/group/features/confounds.tsv"}
if INPUTS.eeg:
    FEATURES["eeg_bandpower"] = f"{OUT}/group/features/eeg_bandpower.tsv"
    FEATURES["eeg_riemann"] = f"{OUT}/group/features/eeg_riemann.tsv"
if FMRI_RUNS:
    FEATURES["fmri_connectivity"] = f"{OUT}/group/features/fmri_connectivity.tsv"
    # shrunk covariances, projected to the tangent space inside each training fold
    FEATURES["fmri_tangent"] = f"{OUT}/group/features/fmri_tangent.parquet"
    if config["downstream"]["states"]["enabled"]:
        FEATURES["fmri_states"] = FMRI_STATES
# Mean framewise displacement per participant joins the confounds and the subtype checks
# when the fMRI QC has a motion estimate (preprocessed BOLD, not parcellated inputs).
MOTION_QC = [f"{OUT}/group/fmri/qc.tsv"] if INPUTS.bold else []
# Outer folds fixed from participants.tsv: per-fold SSL encoders and HMMs, and the harness.
FOLDS = f"{OUT}/group/predict/folds.tsv"
# Cross-modal pretraining needs both modalities; with one, it is skipped (and said so).
CROSSMODAL = config["ssl"]["crossmodal"]["enabled"] and len(MODALITIES) == 2
if config["ssl"]["crossmodal"]["enabled"] and not CROSSMODAL:
    logger.warning(f"ssl.crossmodal is skipped: it needs EEG and fMRI, found only {MODALITIES}")
SSL_ENCODERS = ["ssl", "random"] + (["crossmodal"] if CROSSMODAL else [])
# Pretraining on every participant (transductive), or one encoder per outer fold trained
# without that fold's test participants.
TRAIN_FOLDS = config["ssl"]["pretrain_participants"] == "train_folds"
PRETRAIN = (
    [f"fold{k}" for k in range(config["downstream"]["outer_folds"])] if TRAIN_FOLDS else ["all"]
)
SSL_SETS = []
for _modality in MODALITIES:
    for _encoder in SSL_ENCODERS:
        SSL_SETS.append(f"{_encoder}_{_modality}")
        FEATURES[f"{_encoder}_{_modality}"] = (
            f"{OUT}/group/ssl/modality-{_modality}_encoder-{_encoder}_participants.parquet"
        )
# What the participants with data can hold (folds per class, subtyping's k range, columns
# that exist), decided before any job runs: a stage that cannot run is skipped with its reason
# in the log and in group/feasibility.tsv.
VERDICTS = feasibility.assess(config, planning_participants(config, INPUTS, OUT))
for _verdict in VERDICTS:
    if not _verdict.runs:
        logger.warning(f"skipped {_verdict.stage} ({_verdict.item}): {_verdict.reason}")
TARGETS = [v.item for v in VERDICTS if v.stage == "predict" and v.runs]
SUBTYPING = all(v.runs for v in VERDICTS if v.stage == "subtype")
PROBE = config["ssl"]["probe"]["column"] and all(v.runs for v in VERDICTS if v.stage == "ssl_probe")
# Clustering has no outer folds: it uses transductive encoders only.
SUBTYPE_SETS = [
    n
    for n in config["downstream"]["subtyping"]["feature_sets"]
    if SUBTYPING and n in FEATURES and not (TRAIN_FOLDS and n in SSL_SETS)
]
MULTIVIEW = (
    SUBTYPING
    and all(v.runs for v in VERDICTS if v.stage == "multiview")
    and config["downstream"]["multiview"]["enabled"]
    and config["downstream"]["multiview"]["feature_set"] in FEATURES
)
CACHE_MANIFEST = os.path.join(config["cache"]["root"] or os.path.join(OUT, "cache"), "manifest.tsv")


def settings_of(section, *keys):
    """Only the ``keys`` of a config section: a rule's params (and so its reruns) change only
    when a setting it reads changes."""
    return {key: config[section][key] for key in keys}


def ssl_settings(modality):
    """One modality's SSL settings with the shared seed and device."""
    return config["ssl"][modality] | {k: config["ssl"][k] for k in ("seed", "device")}
