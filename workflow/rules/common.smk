# Lists of per-recording outputs and feature tables, derived from the validated config.


def eeg_outputs(pattern):
    return [pattern.format(subject=r.subject, entities=r.entities) for r in INPUTS.eeg]


FMRI_RUNS = PLAN.fmri_runs


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
# The plan's decisions (brainrep.plan), under the names the rules use.
MODALITIES = PLAN.modalities
FEATURES = PLAN.features
MOTION_QC = PLAN.motion_qc
# Outer folds fixed from participants.tsv: per-fold SSL encoders and HMMs, and the harness.
FOLDS = f"{OUT}/group/predict/folds.tsv"
CROSSMODAL = PLAN.crossmodal
FOUNDATION = PLAN.foundation
# the weights file, a job input where it is local (a URL is read from the offline cache)
FOUNDATION_WEIGHTS = [
    w.removeprefix("file://")
    for w in [config["ssl"]["foundation"]["weights"]]
    if w and not w.startswith(("http://", "https://"))
]
SSL_ENCODERS = PLAN.ssl_encoders


COHORT_DATASET = dataset_identity(config)


def window_store(modality):
    """The cohort's window store of ``modality``: array, table and sidecar."""
    return [f"{OUT}/group/{modality}/windows.{extension}" for extension in ("npy", "tsv", "json")]


def corpus_stores(modality):
    """The window stores (array, table, sidecar of each) of the corpora with ``modality``."""
    return [
        f"{folder}/group/{modality}/windows.{extension}"
        for folder, modalities, _ in (PLAN.corpus or {}).values()
        if modality in modalities
        for extension in ("npy", "tsv", "json")
    ]


def corpus_datasets(modality):
    """The dataset identity (brainrep.plan.dataset_identity) of each of those stores."""
    return [
        dataset
        for _, modalities, dataset in (PLAN.corpus or {}).values()
        if modality in modalities
    ]


TRAIN_FOLDS = PLAN.train_folds
PRETRAIN = PLAN.pretrain
SSL_SETS = PLAN.ssl_sets
VERDICTS = PLAN.verdicts
for _reason in PLAN.skipped:
    logger.warning(f"skipped {_reason}")
TARGETS = PLAN.targets
PROBE = PLAN.probe
FINETUNE = PLAN.finetune_encoders
# what a fine-tuning job reads of ssl.finetune (not the list of encoders: adding one reruns
# only its own jobs; nor whether targets fine-tune), with the shared seed and device
FINETUNE_SETTINGS = {
    k: v for k, v in config["ssl"]["finetune"].items() if k not in ("encoders", "targets")
} | {
    k: config["ssl"][k] for k in ("seed", "device")
}
# the window-level probe's label fractions: the prediction curve's, and always all labels
PROBE_FRACTIONS = sorted(set(config["downstream"]["label_fractions"]) | {1.0})
SUBTYPE_SETS = PLAN.subtype_sets
MULTIVIEW = PLAN.multiview
CACHE_MANIFEST = os.path.join(config["cache"]["root"] or os.path.join(OUT, "cache"), "manifest.tsv")


def settings_of(section, *keys):
    """Only the ``keys`` of a config section: a rule's params (and so its reruns) change only
    when a setting it reads changes."""
    return {key: config[section][key] for key in keys}


def target_features(wildcards):
    """The feature tables of the job's target: every set's, and those of the encoders
    fine-tuned with that target inside each outer fold (<encoder>_<modality>_finetuned)."""
    return FEATURES | PLAN.finetuned.get(wildcards.target, {})


def finetuned_pretraining_of(wildcards):
    """The pretraining column of the job's target's fine-tuned feature sets."""
    return {
        name: finetuned_pretraining(name.split("_")[0], PRETRAIN)
        for name in PLAN.finetuned.get(wildcards.target, {})
    }


def ssl_settings(modality):
    """One modality's SSL settings with the shared seed and device."""
    return config["ssl"][modality] | {k: config["ssl"][k] for k in ("seed", "device")}


def encoder_checkpoints(wildcards, which="model"):
    """The checkpoints (or, with which="card", their model cards) of the job's {encoder}:
    its modality's unimodal encoders, or the cross-modal ones, one per {pretrain}."""
    if wildcards.encoder == "crossmodal":
        return expand(getattr(rules.ssl_crossmodal.output, which), pretrain=PRETRAIN)
    return expand(
        getattr(rules.ssl_pretrain.output, which),
        modality=wildcards.modality,
        pretrain=PRETRAIN,
    )
