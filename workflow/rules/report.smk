# The report: the first page written from the result tables (what holds), QC pages per
# participant and for the group, and the run's provenance.
import re

from brainrep.bids import confounds_path

QC_SUBJECTS = sorted({r.subject for r in [*INPUTS.eeg, *FMRI_RUNS]})
SOURCE_FILES = [
    r.path for r in [*INPUTS.eeg, *(INPUTS.raw_bold or INPUTS.bold), *INPUTS.timeseries]
] + [f for f in (INPUTS.participants_tsv, INPUTS.atlas_image, INPUTS.atlas_labels) if f]


rule provenance:
    input:
        files=SOURCE_FILES,
    output:
        inputs=f"{OUT}/provenance/inputs.tsv",
        software=f"{OUT}/provenance/software.tsv",
        rules=f"{OUT}/provenance/rules.tsv",
    params:
        # each rule's declared environment (rules defined in the included files above)
        # evaluated when the DAG is built, once every rule (this file's too) is defined
        # (one row for the batch rules fmri_connectivity_<k>)
        rules=lambda wildcards: list(
            {
                re.sub(r"_\d+$", "_<k>", r.name): {
                    "rule": re.sub(r"_\d+$", "_<k>", r.name),
                    "conda": r.conda_env,
                    "container": r.container_img,
                }
                for r in workflow.rules
                if r.conda_env or r.container_img
            }.values()
        ),
    log:
        f"{OUT}/logs/provenance.log",
    conda:
        "../../envs/bids.yaml"
    container:
        CONTAINERS.format(family="bids")
    script:
        "../scripts/provenance.py"


rule qc_pages:
    input:
        # a path, not rules.exclusions.output: Snakemake maps each of a rule's inputs to the
        # rules it names, quadratic in the 10,000s of per-recording inputs here
        ledger=f"{OUT}/group/exclusions.tsv",
        eeg_epochs=eeg_outputs(EEG_EPOCHS),
        eeg_figures=eeg_outputs(EEG_PSD_FIGURE),
        fmri_relmats=fmri_outputs(FMRI_RELMAT),
        fmri_series=FMRI_SERIES,
        fmri_confounds=[confounds_path(r.path, config["fmri"]["space"]) for r in INPUTS.bold],
    output:
        pages=expand(f"{OUT}/qc/sub-{{subject}}.html", subject=QC_SUBJECTS),
        group=report(
            f"{OUT}/qc/group.html",
            caption="../report/qc_group.rst",
            category="1. Quality control",
        ),
    params:
        eeg_keys=[r.key for r in INPUTS.eeg],
        fmri_keys=[r.key for r in FMRI_RUNS],
        participants=[f"sub-{s}" for s in QC_SUBJECTS],
        thresholds=config["fmri"]["qc"],
    log:
        f"{OUT}/logs/qc_pages.log",
    conda:
        "../../envs/bids.yaml"
    container:
        CONTAINERS.format(family="bids")
    script:
        "../scripts/qc_pages.py"


rule verdict:
    input:
        metrics=expand(rules.predict_target.output.metrics, target=TARGETS),
        predictions=expand(rules.predict_target.output.predictions, target=TARGETS),
        siteprobe=expand(rules.predict_target.output.site_probe, target=TARGETS),
        window_probes=expand(rules.ssl_probe.output.table, modality=MODALITIES) if PROBE else [],
        subtype=[rules.subtype_participants.output.summary] if SUBTYPE_SETS else [],
        multiview=[rules.subtype_multiview.output.summary] if MULTIVIEW else [],
        feasibility=rules.feasibility.output[0],
        ledger=rules.exclusions.output[0],
        eeg_qc=[rules.eeg_windows.output.qc] if INPUTS.eeg else [],
        fmri_qc=[rules.fmri_windows.output.qc] if FMRI_RUNS else [],
        qc_group=rules.qc_pages.output.group,
        config=rules.resolved_config.output[0],
        inputs=rules.provenance.output.inputs,
        software=rules.provenance.output.software,
        rules=rules.provenance.output.rules,
        intro=os.path.join(workflow.basedir, "workflow", "report", "workflow.rst"),
    output:
        table=f"{OUT}/group/verdict.tsv",
        page=FRONT_PAGE,
    params:
        settings=settings_of("downstream", *VerdictSettings.keys()),
        seeds={"ssl.seed": config["ssl"]["seed"], "downstream.seed": config["downstream"]["seed"]},
        command=" ".join(
            ["snakemake --cores all"]
            + [f"--configfile {f}" for f in workflow.overwrite_configfiles]
        ),
    log:
        f"{OUT}/logs/verdict.log",
    conda:
        "../../envs/stats.yaml"
    container:
        CONTAINERS.format(family="stats")
    script:
        "../scripts/verdict.py"
