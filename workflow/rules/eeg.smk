# EEG: preprocessing and windowing per recording, then the group window store and features.


rule eeg_preprocess:
    input:
        lambda wc: recording(INPUTS.eeg, wc),
    output:
        raw=f"{OUT}/sub-{{subject}}/eeg/sub-{{subject}}_{{entities}}_proc-clean_raw.fif",
        epochs=EEG_EPOCHS,
        figure=EEG_PSD_FIGURE,
    params:
        bids_root=INPUTS.bids_root,
        settings=settings_of("eeg", *PreprocessSettings.keys()),
    log:
        f"{OUT}/logs/eeg_preprocess/sub-{{subject}}_{{entities}}.log",
    group:
        "eeg_recording"
    conda:
        "../../envs/eeg.yaml"
    container:
        CONTAINERS.format(family="eeg")
    script:
        "../scripts/eeg_preprocess.py"


rule eeg_windows:
    input:
        eeg_outputs(EEG_EPOCHS),
    output:
        array=f"{OUT}/group/eeg/windows.npy",
        table=f"{OUT}/group/eeg/windows.tsv",
        sidecar=f"{OUT}/group/eeg/windows.json",
        qc=f"{OUT}/group/eeg/qc.tsv",
        exclusions=report(
            f"{OUT}/group/eeg/exclusions.tsv",
            caption="../report/exclusions.rst",
            category="1. Quality control",
        ),
        psd=report(
            f"{OUT}/group/eeg/psd.png",
            caption="../report/eeg_psd.rst",
            category="1. Quality control",
        ),
    params:
        recordings=[r.key for r in INPUTS.eeg],
    log:
        f"{OUT}/logs/eeg_windows.log",
    conda:
        "../../envs/eeg.yaml"
    container:
        CONTAINERS.format(family="eeg")
    script:
        "../scripts/eeg_windows.py"


rule eeg_features:
    input:
        array=rules.eeg_windows.output.array,
        table=rules.eeg_windows.output.table,
    output:
        bandpower=f"{OUT}/group/features/eeg_bandpower.tsv",
        riemann=f"{OUT}/group/features/eeg_riemann.tsv",
    params:
        bands=config["eeg"]["bands"],
    log:
        f"{OUT}/logs/eeg_features.log",
    conda:
        "../../envs/eeg.yaml"
    container:
        CONTAINERS.format(family="eeg")
    script:
        "../scripts/eeg_features.py"


rule eeg:
    input:
        rules.eeg_windows.output,
        rules.eeg_features.output,
