# fMRI: template-space BOLD + fMRIPrep confounds -> denoised parcel series (light path), or
# existing parcellated time series; then per-run connectivity, group crops and features.

if INPUTS.timeseries:
    # Connectivity of a parcellated series takes milliseconds: one job per batch of runs
    # (fmri.recordings_per_job), so a workstation starts one Python per batch, not per run
    # (and a cluster gets one sbatch per batch: no group).
    for _index, _batch in enumerate(PLAN.connectivity_batches):

        rule:
            name:
                f"fmri_connectivity_{_index}"
            input:
                [run.path for run in _batch],
            output:
                [FMRI_RELMAT.format(subject=run.subject, entities=run.entities) for run in _batch],
            params:
                kind=config["fmri"]["connectivity"],
            log:
                f"{OUT}/logs/fmri_connectivity/batch-{_index}.log",
            benchmark:
                f"{OUT}/benchmarks/fmri_connectivity/batch-{_index}.tsv"
            conda:
                "../../envs/fmri.yaml"
            container:
                CONTAINERS.format(family="fmri")
            script:
                "../scripts/fmri_connectivity.py"


else:
    # fMRIPrep, one rule per participant (its runs are that participant's outputs), when
    # fmri.fmriprep.run starts from raw BOLD.
    for _subject in sorted({run.subject for run in INPUTS.raw_bold}):
        _runs = [
            (raw, pre)
            for raw, pre in zip(INPUTS.raw_bold, INPUTS.bold)
            if raw.subject == _subject
        ]

        rule:
            name:
                f"fmriprep_{_subject}"
            input:
                bold=[raw.path for raw, _ in _runs],
                license=FMRIPREP["license"],
            output:
                bold=[pre.path for _, pre in _runs],
                confounds=[confounds_path(pre.path, config["fmri"]["space"]) for _, pre in _runs],
                report=f"{FMRIPREP_DIR}/sub-{_subject}.html",
            params:
                command=fmriprep.shell_command(
                    INPUTS.bids_root,
                    FMRIPREP_DIR,
                    f"{FMRIPREP['work_dir']}/sub-{_subject}",
                    _subject,
                    config["fmri"]["space"],
                    FMRIPREP,
                ),
            threads: FMRIPREP["nthreads"]
            resources:
                mem_mb=FMRIPREP["mem_mb"] + 2000,
                runtime=FMRIPREP["runtime_min"],
            log:
                f"{OUT}/logs/fmriprep/sub-{_subject}.log",
            container:
                FMRIPREP["image"]
            shell:
                "{params.command} > {log} 2>&1"

    rule fmri_parcellate:
        input:
            bold=lambda wc: recording(INPUTS.bold, wc),
            confounds=lambda wc: confounds_path(
                recording(INPUTS.bold, wc), config["fmri"]["space"]
            ),
            atlas=[f for f in (INPUTS.atlas_image, INPUTS.atlas_labels) if f],
        output:
            timeseries=FMRI_TIMESERIES,
            relmat=FMRI_RELMAT,
        params:
            atlas=config["fmri"]["atlas"],
            settings=settings_of("fmri", *ParcellateSettings.keys()),
        log:
            f"{OUT}/logs/fmri_parcellate/sub-{{subject}}_{{entities}}.log",
        group:
            "fmri_recording"
        conda:
            "../../envs/fmri.yaml"
        container:
            CONTAINERS.format(family="fmri")
        script:
            "../scripts/fmri_parcellate.py"


rule fmri_windows:
    input:
        timeseries=FMRI_SERIES,
        relmat=fmri_outputs(FMRI_RELMAT),
    output:
        array=f"{OUT}/group/fmri/windows.npy",
        table=f"{OUT}/group/fmri/windows.tsv",
        sidecar=f"{OUT}/group/fmri/windows.json",
        qc=f"{OUT}/group/fmri/qc.tsv",
        qcfc=f"{OUT}/group/fmri/qcfc.tsv",
        parcels=f"{OUT}/group/fmri/parcels.tsv",
        exclusions=report(
            f"{OUT}/group/fmri/exclusions.tsv",
            caption="../report/exclusions.rst",
            category="1. Quality control",
        ),
        features=f"{OUT}/group/features/fmri_connectivity.tsv",
        covariances=f"{OUT}/group/features/fmri_tangent.parquet",
        figure=report(
            f"{OUT}/group/fmri/connectivity.png",
            caption="../report/fmri_connectivity.rst",
            category="1. Quality control",
        ),
    params:
        recordings=[r.key for r in FMRI_RUNS],
        settings=settings_of("fmri", *GroupSettings.keys()),
    # the series' tables (window store, covariances) and the matrices' (edges, QC-FC) in
    # one process each
    threads: 2
    log:
        f"{OUT}/logs/fmri_windows.log",
    benchmark:
        f"{OUT}/benchmarks/fmri_windows.tsv"
    conda:
        "../../envs/fmri.yaml"
    container:
        CONTAINERS.format(family="fmri")
    script:
        "../scripts/fmri_windows.py"


rule fmri:
    input:
        rules.fmri_windows.output,
