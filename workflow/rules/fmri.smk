# fMRI: template-space BOLD + fMRIPrep confounds -> denoised parcel series (light path), or
# existing parcellated time series; then per-run connectivity, group crops and features.

if INPUTS.timeseries:

    rule fmri_connectivity:
        input:
            lambda wc: recording(INPUTS.timeseries, wc),
        output:
            FMRI_RELMAT,
        params:
            kind=config["fmri"]["connectivity"],
        log:
            f"{OUT}/logs/fmri_connectivity/sub-{{subject}}_{{entities}}.log",
        group:
            "fmri_recording"
        conda:
            "../../envs/fmri.yaml"
        container:
            CONTAINERS.format(family="fmri")
        script:
            "../scripts/fmri_connectivity.py"


else:

    rule fmri_parcellate:
        input:
            bold=lambda wc: recording(INPUTS.bold, wc),
            confounds=lambda wc: confounds_path(
                recording(INPUTS.bold, wc), config["fmri"]["space"]
            ),
            atlas=INPUTS.atlas_image,
            labels=INPUTS.atlas_labels,
        output:
            timeseries=FMRI_TIMESERIES,
            relmat=FMRI_RELMAT,
        params:
            settings={
                k: config["fmri"][k]
                for k in ("denoise_strategy", "high_pass_hz", "low_pass_hz", "connectivity")
            },
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
        qc=f"{OUT}/group/fmri/qc.tsv",
        features=f"{OUT}/group/features/fmri_connectivity.tsv",
        figure=report(
            f"{OUT}/group/fmri/connectivity.png",
            caption="../report/fmri_connectivity.rst",
            category="1. Quality control",
        ),
    params:
        participants=[f"sub-{r.subject}" for r in FMRI_RUNS],
        length=config["fmri"]["window_volumes"],
        step=config["fmri"]["window_step"],
    log:
        f"{OUT}/logs/fmri_windows.log",
    conda:
        "../../envs/fmri.yaml"
    container:
        CONTAINERS.format(family="fmri")
    script:
        "../scripts/fmri_windows.py"


rule fmri:
    input:
        rules.fmri_windows.output,
