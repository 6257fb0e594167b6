# brainrep: raw BIDS (EEG, fMRI) -> preprocessing -> SSL embeddings -> prediction and subtyping.
# Run from the repository root: `snakemake --cores N [--configfile config/examples/X.yaml]`.
import os
from pathlib import Path

from brainrep import cache, fmriprep
from brainrep.config import validate_config
from brainrep.eeg.settings import PreprocessSettings
from brainrep.fmri.settings import GroupSettings, ParcellateSettings
from brainrep.plan import build_plan, corpus_config, dataset_identity
from brainrep.predict.resources import memory_mb as predict_memory_mb
from brainrep.predict.settings import PredictionSettings
from brainrep.report.settings import VerdictSettings
from brainrep.ssl.settings import PRETRAINING, finetuned_pretraining
from brainrep.subtype.settings import MultiviewStageSettings, SubtypeStageSettings


# Without --configfile the built-in demo runs with its settings; a user's configuration starts
# from the schema's documented defaults, never from the demo's.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"



validate_config(config, Path(workflow.basedir, "workflow", "schemas", "config.schema.yaml"))
# Items a job would download (fetched by the `prefetch` rule), before any offline rewrite.
CACHE_ITEMS = cache.required_items(config)
if config["cache"]["offline"]:
    cache.offline_config(config)  # every download now reads cache.root, checked here

# Jobs import brainrep from the environment; inside a bare per-rule conda environment they
# fall back to workflow/scripts/brainrep, a link to src/brainrep (Snakemake puts a script's
# folder on sys.path).
OUT = f"results/{config['name']}"
# The report's first page: the verdict written from the result tables once the `verdict`
# rule has run, the workflow description before.
FRONT_PAGE = f"{OUT}/report/front_page.rst"


report: os.path.abspath(FRONT_PAGE) if os.path.exists(FRONT_PAGE) else "workflow/report/workflow.rst"


PLAN = build_plan(config, OUT)
INPUTS = PLAN.inputs
for _path, _reason in INPUTS.ignored:
    logger.warning(f"ignored {_path}: {_reason} (bids.invalid_files: ignore)")
ATLAS = config["fmri"]["atlas"]["name"]
KIND = config["fmri"]["connectivity"].replace(" ", "")
CONTAINERS = "docker://ghcr.io/brainrep/brainrep-{family}:0.2.0"
FMRIPREP = config["fmri"]["fmriprep"]
FMRIPREP_DIR = f"{OUT}/derivatives/fmriprep"


wildcard_constraints:
    subject="[A-Za-z0-9]+",
    entities="[A-Za-z0-9_-]+",
    modality="eeg|fmri",
    encoder="ssl|random|crossmodal",
    pretrain="all|corpus|fold[0-9]+",
    target="[A-Za-z0-9_]+",


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/index.smk"
include: "workflow/rules/eeg.smk"
include: "workflow/rules/fmri.smk"
include: "workflow/rules/ssl.smk"
include: "workflow/rules/downstream.smk"
include: "workflow/rules/prefetch.smk"
include: "workflow/rules/report.smk"  # last: it lists every rule's environment


# Each pretraining corpus (ssl.corpus) is this workflow again, as a module with the corpus's
# configuration (brainrep.plan.corpus_config): its rules, prefixed corpus_<name>_, write its
# window stores under results/<name>_corpus-<corpus>/, which the ssl rules read (its `all` is
# not a target; `prefetch` stays the cohort's, which shares cache.root). A loop needs the calls
# the `module` and `use rule * from ... as ...` directives compile to (Snakemake 9.27, pinned).
for _corpus in config["ssl"]["corpus"] if PLAN.corpus else []:
    _module = f"corpus_{_corpus['name']}"
    workflow.module(_module, snakefile="Snakefile", config=corpus_config(config, _corpus))
    workflow.userule(rules=["*"], from_module=_module, exclude_rules=["all", "prefetch"],
                     name_modifier=f"{_module}_*")(lambda: None)


rule all:
    default_target: True
    input:
        rules.predict.input,
        rules.embeddings.input,
        rules.subtype.input,
        rules.resolved_config.output,
        rules.feasibility.output,
        rules.exclusions.output,
        rules.verdict.output,
        # the group page's job writes every participant's page; asking for each of them here
        # would cost Snakemake a scan of that job's inputs per page (quadratic in the cohort)
        rules.qc_pages.output.group,
