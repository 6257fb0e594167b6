"""The plan: everything the DAG needs, decided from the validated config and the BIDS
dataset before any job runs, without Snakemake.

:func:`build_plan` resolves the inputs (:class:`Inputs`), the modalities, the feature sets and
their paths, the SSL encoders and where they are pretrained, and what each downstream stage
can run on (:mod:`brainrep.feasibility`), with the reason for whatever is skipped. The
Snakefile and the rules read only the plan.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from brainrep import feasibility, simulate
from brainrep.atlases import atlas_files
from brainrep.bids import (
    BIDSError,
    Recording,
    find_bold,
    find_eeg,
    find_raw_bold,
    find_timeseries,
    read_participants,
)
from brainrep.fmriprep import expected_outputs


@dataclass(frozen=True)
class Inputs:
    """Everything the DAG reads, resolved from the validated config before any job runs."""

    bids_root: str
    participants_tsv: str
    eeg: list[Recording]
    bold: list[Recording]
    timeseries: list[Recording]
    atlas_image: str | None
    atlas_labels: str | None
    raw_bold: list[Recording]
    ignored: list[tuple[str, str]]

    @classmethod
    def from_config(cls, config: dict, out: str) -> Inputs:
        """Resolve every input; with ``fmri.fmriprep.run``, ``bold`` lists the runs fMRIPrep
        will write under ``<out>/derivatives/fmriprep`` from ``raw_bold``."""
        demo = config["demo"]["enabled"]
        root = f"{out}/bids" if demo else config["bids"]["root"]
        wanted = config["bids"]["participant_label"]
        ignored: list[tuple[str, str]] | None = (
            [] if config["bids"]["invalid_files"] == "ignore" else None)
        eeg_cfg, fmri_cfg = config["eeg"], config["fmri"]
        if demo:
            subjects = [s for s in simulate.subject_labels(config["demo"]["n_subjects"],
                                                                  config["demo"]["first_subject"])
                        if not wanted or s in wanted]
            eeg = [Recording(s, f"task-{simulate.EEG_TASK}", f"{root}/{simulate.eeg_relpath(s)}")
                   for s in subjects] if eeg_cfg["enabled"] else []
            bold = [Recording(s, f"task-{simulate.BOLD_TASK}",
                              f"{root}/{simulate.bold_relpath(s)}")
                    for s in subjects] if fmri_cfg["enabled"] else []
            demo_atlas = (f"{root}/{simulate.ATLAS_RELPATH}",
                          f"{root}/{simulate.ATLAS_LABELS_RELPATH}")
            timeseries, raw_bold = [], []
        else:
            eeg = sorted((r for task in eeg_cfg["tasks"]
                          for r in find_eeg(root, task, wanted, ignored)),
                         key=lambda r: r.key) if eeg_cfg["enabled"] else []
            bold, timeseries, raw_bold = [], [], []
            if fmri_cfg["enabled"] and fmri_cfg["timeseries"]:
                timeseries = find_timeseries(fmri_cfg["timeseries"], fmri_cfg["task"],
                                             fmri_cfg["atlas"]["name"], wanted, ignored)
            elif fmri_cfg["enabled"] and fmri_cfg["fmriprep"]["run"]:
                raw_bold = find_raw_bold(root, fmri_cfg["task"], wanted, ignored)
                bold = expected_outputs(raw_bold, root, f"{out}/derivatives/fmriprep",
                                        fmri_cfg["space"])
            elif fmri_cfg["enabled"]:
                derivatives = fmri_cfg["derivatives"] or f"{root}/derivatives/fmriprep"
                bold = find_bold(derivatives, fmri_cfg["task"], fmri_cfg["space"], wanted,
                                 ignored)
            demo_atlas = None
            if not (eeg or bold or timeseries):
                raise BIDSError(f"{root}: no EEG (tasks {eeg_cfg['tasks']}), BOLD "
                                f"(task-{fmri_cfg['task']}, space-{fmri_cfg['space']}) or "
                                f"parcellated time series (seg-{fmri_cfg['atlas']['name']}) "
                                "found. Check bids.root, the task names, fmri.derivatives, "
                                "fmri.fmriprep.run and fmri.timeseries.")
        atlas = atlas_files(fmri_cfg["atlas"], demo_atlas) if bold else (None, None)
        return cls(root, f"{root}/participants.tsv", eeg, bold, timeseries, *atlas, raw_bold,
                   ignored or [])


def planning_participants(config: dict, inputs: Inputs, out: str) -> pd.DataFrame:
    """participants.tsv rows of the participants with a recording, read at planning time
    (the demo's table is computed from its spec, since it is written by a job)."""
    if config["demo"]["enabled"]:
        spec = {k: v for k, v in config["demo"].items() if k != "enabled"}
        table = simulate.participants_table(simulate.DemoSpec(**spec))
    else:
        table = read_participants(inputs.participants_tsv)
    recorded = {f"sub-{r.subject}" for r in inputs.eeg + inputs.bold + inputs.timeseries}
    return table[table["participant_id"].isin(recorded)].reset_index(drop=True)


@dataclass(frozen=True)
class Plan:
    """The workflow's decisions for one configuration (paths relative to the run's root)."""

    out: str
    inputs: Inputs
    modalities: list[str]
    #: feature set name -> its table, in the order every table and figure lists them
    features: dict[str, str]
    ssl_encoders: list[str]
    ssl_sets: list[str]
    crossmodal: bool
    train_folds: bool
    pretrain: list[str]
    verdicts: list[feasibility.Verdict]
    targets: list[str]
    probe: bool
    subtype_sets: list[str]
    multiview: bool
    motion_qc: list[str]
    #: parcellated time-series runs in batches, one fmri_connectivity_<k> job each
    connectivity_batches: list[list[Recording]]
    crossmodal_requested: bool = False
    #: a published EEG foundation model (ssl.foundation) embeds the EEG windows
    foundation: bool = False
    foundation_requested: bool = False
    #: encoders fine-tuned with the probe's label (ssl.finetune.encoders this run has)
    finetune_encoders: list[str] = field(default_factory=list)
    #: ssl.finetune.encoders this run has not (with a probe or a target)
    finetune_missing: list[str] = field(default_factory=list)
    #: target -> feature set name -> table of the encoders fine-tuned with that target inside
    #: each outer fold (``<encoder>_<modality>_finetuned``, ssl.finetune.encoders)
    finetuned: dict[str, dict[str, str]] = field(default_factory=dict)
    #: ssl.pretrain_participants: train_folds, but no target gives outer folds
    transductive_fallback: bool = False
    #: SSL feature sets of downstream.subtyping.feature_sets left out: pretrained per fold
    per_fold_unclustered: list[str] = field(default_factory=list)
    #: ssl.corpus: corpus name -> the results folder of its preprocessing
    #: (results/<name>_corpus-<corpus>), the modalities it has and its dataset's identity
    corpus: dict[str, tuple[str, list[str], str]] | None = None

    @property
    def fmri_runs(self) -> list[Recording]:
        """fMRI runs enter as preprocessed BOLD (parcellated here) or as parcellated time
        series."""
        return self.inputs.bold or self.inputs.timeseries

    @property
    def skipped(self) -> list[str]:
        """One line per stage that cannot run, with the reason."""
        lines = [f"{v.stage} ({v.item}): {v.reason}" for v in self.verdicts if not v.runs]
        if self.crossmodal_requested and not self.crossmodal:
            lines.append(f"ssl.crossmodal: it needs EEG and fMRI, found only {self.modalities}")
        if self.per_fold_unclustered:
            lines.append(f"subtyping of {list(self.per_fold_unclustered)}: their encoders are "
                         "pretrained per outer fold (ssl.pretrain_participants: train_folds), "
                         "and clustering has no folds; name an ssl.corpus to cluster them")
        if self.transductive_fallback:
            lines.append("ssl.pretrain_participants: train_folds needs the outer folds of a "
                         "prediction target, and none runs: encoders pretrain on every "
                         "participant (pretraining: transductive)")
        if self.foundation_requested and not self.foundation:
            lines.append("ssl.foundation: it needs EEG and ssl.enabled: true (modalities: "
                         f"{self.modalities})")
        if self.finetune_missing:
            lines.append(f"fine-tuning of {self.finetune_missing} (ssl.finetune.encoders): "
                         "this run has no such encoder (crossmodal needs "
                         "ssl.crossmodal.enabled and both modalities)")
        return lines


def build_plan(config: dict, out: str) -> Plan:
    """The plan of a validated ``config`` writing under ``out`` (``results/<name>``)."""
    inputs = Inputs.from_config(config, out)
    fmri_runs = inputs.bold or inputs.timeseries
    modalities = [m for m, recs in (("eeg", inputs.eeg), ("fmri", fmri_runs)) if recs]
    group = f"{out}/group"
    features = {"confounds": f"{group}/features/confounds.tsv"}
    if inputs.eeg:
        features["eeg_bandpower"] = f"{group}/features/eeg_bandpower.tsv"
        features["eeg_riemann"] = f"{group}/features/eeg_riemann.tsv"
    if fmri_runs:
        features["fmri_connectivity"] = f"{group}/features/fmri_connectivity.tsv"
        # shrunk covariances, projected to the tangent space inside each training fold
        features["fmri_tangent"] = f"{group}/features/fmri_tangent.parquet"
        if config["downstream"]["states"]["enabled"]:
            features["fmri_states"] = f"{group}/features/fmri_states.tsv"
    ssl = config["ssl"]["enabled"]
    requested = config["ssl"]["crossmodal"]["enabled"]
    crossmodal = ssl and requested and len(modalities) == 2
    encoders = ["ssl", "random"] + (["crossmodal"] if crossmodal else []) if ssl else []
    verdicts = feasibility.assess(config, planning_participants(config, inputs, out))
    targets = [v.item for v in verdicts if v.stage == "predict" and v.runs]
    # Pretraining on unlabelled corpora (transfer), one encoder per outer fold trained without
    # that fold's test participants, or on every participant (transductive): without a target
    # there are no outer folds, and no table compares SSL with baselines.
    corpus = corpus_modalities(config, out, modalities) if ssl and config["ssl"]["corpus"] \
        else None
    per_fold = ssl and not corpus and config["ssl"]["pretrain_participants"] == "train_folds"
    train_folds = per_fold and bool(targets)
    pretrain = (["corpus"] if corpus else [f"fold{k}" for k in range(
        config["downstream"]["outer_folds"])] if train_folds else ["all"]) if ssl else []
    ssl_sets = []
    for modality in modalities:
        for encoder in encoders:
            ssl_sets.append(f"{encoder}_{modality}")
            features[f"{encoder}_{modality}"] = (
                f"{group}/ssl/modality-{modality}_encoder-{encoder}_participants.parquet")
    wants_foundation = config["ssl"]["foundation"]["model"] is not None
    foundation = wants_foundation and ssl and "eeg" in modalities
    if foundation:
        features["foundation_eeg"] = (
            f"{group}/ssl/modality-eeg_encoder-foundation_participants.parquet")
    probe = ssl and bool(config["ssl"]["probe"]["column"]) and all(
        v.runs for v in verdicts if v.stage == "ssl_probe")
    # fine-tuning with the probe's label, and with each target (ssl.finetune.targets)
    per_target = ssl and bool(targets) and config["ssl"]["finetune"]["targets"]
    finetune = config["ssl"]["finetune"]["encoders"] if probe or per_target else []
    available = encoders + (["foundation"] if foundation else [])
    fine_tuned = [(e, m) for m in modalities for e in finetune
                  if per_target and e in available and (e != "foundation" or m == "eeg")]
    subtyping = all(v.runs for v in verdicts if v.stage == "subtype")
    multiview_cfg = config["downstream"]["multiview"]
    return Plan(
        out=out, inputs=inputs, modalities=modalities, features=features,
        ssl_encoders=encoders, ssl_sets=ssl_sets, crossmodal=crossmodal,
        train_folds=train_folds, pretrain=pretrain, verdicts=verdicts,
        targets=targets, transductive_fallback=per_fold and not train_folds,
        probe=probe, finetune_encoders=[e for e in finetune if probe and e in available],
        finetuned={target: {f"{e}_{m}_finetuned": f"{group}/ssl/modality-{m}_encoder-{e}_"
                            f"target-{target}_desc-finetuned_participants.parquet"
                            for e, m in fine_tuned} for target in targets},
        # (foundation is listed by default: without a model, nothing is missing)
        finetune_missing=[e for e in finetune if e not in available and e != "foundation"],
        # Clustering has no outer folds: it uses encoders pretrained once (on a corpus, or
        # transductive), not per-fold ones.
        subtype_sets=[n for n in config["downstream"]["subtyping"]["feature_sets"]
                      if subtyping and n in features and not (train_folds and n in ssl_sets)],
        per_fold_unclustered=[n for n in config["downstream"]["subtyping"]["feature_sets"]
                              if subtyping and train_folds and n in ssl_sets],
        multiview=(subtyping and all(v.runs for v in verdicts if v.stage == "multiview")
                   and multiview_cfg["enabled"] and multiview_cfg["feature_set"] in features),
        # Mean framewise displacement per participant joins the confounds and the subtype
        # checks when the fMRI QC has a motion estimate (preprocessed BOLD, not time series).
        motion_qc=[f"{group}/fmri/qc.tsv"] if inputs.bold else [],
        connectivity_batches=batches(inputs.timeseries, config["fmri"]["recordings_per_job"]),
        crossmodal_requested=requested and ssl, foundation=foundation,
        foundation_requested=wants_foundation, corpus=corpus)


def corpus_config(config: dict, corpus: dict) -> dict:
    """The configuration that preprocesses ``corpus`` (an item of ``ssl.corpus``) as
    ``config`` preprocesses its cohort (the same eeg and fmri settings, the corpus's own EEG
    tasks and fMRI task where it names them) and runs no SSL or downstream stage: its window
    stores are all the cohort's pretraining reads."""
    derived = copy.deepcopy(config)
    derived["name"] = f"{config['name']}_corpus-{corpus['name']}"
    simulated = corpus["simulated"]
    derived["demo"] = ({"enabled": True, "effect_size": config["demo"]["effect_size"]}
                       | simulated if simulated else {"enabled": False})
    derived["bids"] |= {"root": None if simulated else corpus["bids_root"] or
                        corpus["timeseries"], "participant_label": []}
    derived["eeg"]["tasks"] = corpus["eeg_tasks"] or config["eeg"]["tasks"]
    derived["fmri"]["task"] = corpus["fmri_task"] or config["fmri"]["task"]
    derived["fmri"]["timeseries"] = corpus["timeseries"]
    fmriprep = derived["fmri"]["fmriprep"]
    fmriprep["work_dir"] = f"{fmriprep['work_dir']}/corpus-{corpus['name']}"
    # the cohort's config is already rewritten to the offline cache, and the corpus runs no SSL
    derived["cache"]["offline"] = False
    derived["ssl"] |= {"enabled": False, "corpus": []}
    for modality in ("eeg", "fmri"):
        derived["ssl"][modality] |= {"init_checkpoint": None, "init_checkpoint_sha256": None}
    derived["ssl"]["foundation"] |= {"model": None, "weights": None, "sha256": None}
    derived["downstream"]["targets"] = []
    derived["downstream"]["subtyping"]["feature_sets"] = []
    derived["downstream"]["multiview"]["enabled"] = False
    derived["downstream"]["states"]["enabled"] = False
    return derived


def dataset_identity(config: dict) -> str:
    """What names a configuration's dataset across runs: the simulated demo's seed, else the
    ``Name`` and ``DatasetDOI`` of its ``dataset_description.json`` (the resolved folder when
    it has neither). Participant labels are compared only within one dataset."""
    if config["demo"]["enabled"]:
        return f"brainrep demo (seed {config['demo']['seed']})"
    root = Path(config["bids"]["root"])
    description = json.loads((root / "dataset_description.json").read_text())
    named = " ".join(str(description[k]) for k in ("Name", "DatasetDOI") if description.get(k))
    return named or str(root.resolve())


def corpus_modalities(config: dict, out: str,
                      modalities: list[str]) -> dict[str, tuple[str, list[str], str]]:
    """Each corpus of ``ssl.corpus``: its results folder, the cohort's ``modalities`` it has
    (indexed as its own run will) and its :func:`dataset_identity`. Raises
    :class:`BIDSError` when a corpus is the cohort's own folder, or a modality of the cohort
    is in no corpus (its encoder would have nothing to pretrain on)."""
    own = {Path(p).resolve() for p in (config["bids"]["root"], config["fmri"]["timeseries"])
           if p}
    found = {}
    for corpus in config["ssl"]["corpus"]:
        for key in ("bids_root", "timeseries"):
            if corpus[key] and Path(corpus[key]).resolve() in own:
                raise BIDSError(f"ssl.corpus ({corpus['name']}): {key} {corpus[key]} is the "
                                "cohort's own dataset; an encoder pretrained there has seen "
                                "every evaluation participant. Name another dataset, or "
                                "remove the corpus to pretrain per outer fold.")
        derived = corpus_config(config, corpus)
        folder = f"{out.rsplit('/', 1)[0]}/{derived['name']}"
        inputs = Inputs.from_config(derived, folder)
        found[corpus["name"]] = (folder, [m for m, recordings in (
            ("eeg", inputs.eeg), ("fmri", inputs.bold or inputs.timeseries))
            if recordings and m in modalities], dataset_identity(derived))
    for modality in modalities:
        if not any(modality in kinds for _, kinds, _ in found.values()):
            searched = "; ".join(
                f"{c['name']}: {c['bids_root'] or c['timeseries'] or 'simulated'} "
                f"(EEG tasks {c['eeg_tasks'] or config['eeg']['tasks']}, fMRI task "
                f"{c['fmri_task'] or config['fmri']['task']})" for c in config["ssl"]["corpus"])
            raise BIDSError(f"ssl.corpus: no corpus has {modality} recordings ({searched}), so "
                            "its encoder has nothing to pretrain on. Name the corpus's tasks "
                            "(eeg_tasks, fmri_task), add a corpus with them, or set "
                            "ssl.corpus: [] to pretrain on the cohort.")
    return found


def batches(recordings: list[Recording], size: int) -> list[list[Recording]]:
    """``recordings`` in BIDS order, in consecutive batches of at most ``size``."""
    ordered = sorted(recordings, key=lambda r: r.key)
    return [ordered[start:start + size] for start in range(0, len(ordered), size)]
