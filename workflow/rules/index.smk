# One table of every usable recording, and the participants that have one.


rule bids_index:
    input:
        participants=INPUTS.participants_tsv,
        eeg=[r.path for r in INPUTS.eeg],
        bold=[r.path for r in INPUTS.bold],
        timeseries=[r.path for r in INPUTS.timeseries],
    output:
        recordings=f"{OUT}/group/index/recordings.tsv",
        participants=f"{OUT}/group/index/participants.tsv",
        ignored=f"{OUT}/group/index/ignored.tsv",
    params:
        ignored=INPUTS.ignored,
        eeg=INPUTS.eeg,
        bold=INPUTS.bold,
        timeseries=INPUTS.timeseries,
    log:
        f"{OUT}/logs/bids_index.log",
    benchmark:
        f"{OUT}/benchmarks/bids_index.tsv"
    conda:
        "../../envs/bids.yaml"
    container:
        CONTAINERS.format(family="bids")
    script:
        "../scripts/bids_index.py"


rule index:
    input:
        rules.bids_index.output,


rule resolved_config:
    output:
        f"{OUT}/provenance/config.yaml",
    params:
        config=config,
    localrule: True
    log:
        f"{OUT}/logs/resolved_config.log",
    conda:
        "../../envs/bids.yaml"
    container:
        CONTAINERS.format(family="bids")
    script:
        "../scripts/resolved_config.py"


rule feasibility:
    output:
        f"{OUT}/group/feasibility.tsv",
    params:
        verdicts=[vars(v) for v in VERDICTS],
    localrule: True
    log:
        f"{OUT}/logs/feasibility.log",
    conda:
        "../../envs/bids.yaml"
    container:
        CONTAINERS.format(family="bids")
    script:
        "../scripts/feasibility.py"


rule exclusions:
    input:
        participants=rules.bids_index.output.participants,
        ledgers=[f"{OUT}/group/{m}/exclusions.tsv" for m in MODALITIES],
    output:
        report(
            f"{OUT}/group/exclusions.tsv",
            caption="../report/exclusions.rst",
            category="1. Quality control",
        ),
    params:
        targets=config["downstream"]["targets"],
    localrule: True
    log:
        f"{OUT}/logs/exclusions.log",
    conda:
        "../../envs/bids.yaml"
    container:
        CONTAINERS.format(family="bids")
    script:
        "../scripts/exclusions.py"
