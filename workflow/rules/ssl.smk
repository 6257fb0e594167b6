# Self-supervised pretraining per modality (and across modalities), then embeddings from every
# trained encoder and from the random-init encoder (same architecture, same initial weights),
# and a linear probe that compares them. {pretrain} is "corpus" (the ssl.corpus datasets, none
# of the cohort's participants), "all" (every participant, transductive) or "fold<k>" (every
# participant but the test participants of outer fold k). The probe's encoders fine-tuned with
# its label inside its splits (ssl.finetune) join its table; fine-tuned with a prediction
# target inside each outer fold, they embed every participant for that target's tables.


rule ssl_pretrain:
    input:
        # the cohort's window store (array, table, sidecar), or the corpora's: a corpus
        # encoder is pretrained once, whatever happens to the cohort
        cohort=lambda wc: [] if wc.pretrain == "corpus" else window_store(wc.modality),
        corpus=lambda wc: corpus_stores(wc.modality) if wc.pretrain == "corpus" else [],
        folds=FOLDS if TRAIN_FOLDS else [],
    output:
        model=f"{OUT}/group/ssl/modality-{{modality}}_pretrain-{{pretrain}}_model.pt",
        card=f"{OUT}/group/ssl/modality-{{modality}}_pretrain-{{pretrain}}_card.json",
        history=f"{OUT}/group/ssl/modality-{{modality}}_pretrain-{{pretrain}}_loss.tsv",
        figure=report(
            f"{OUT}/group/ssl/modality-{{modality}}_pretrain-{{pretrain}}_loss.png",
            caption="../report/ssl_loss.rst",
            category="2. Self-supervised pretraining",
        ),
    params:
        settings=lambda wc: ssl_settings(wc.modality),
        datasets=lambda wc: (
            corpus_datasets(wc.modality) if wc.pretrain == "corpus" else [COHORT_DATASET]
        ),
    threads: 2 + config["ssl"]["loader_workers"]
    resources:
        gpu=0,
        # a resource, not a param: it changes how windows are read, never the result
        loader_workers=config["ssl"]["loader_workers"],
    log:
        f"{OUT}/logs/ssl_pretrain/modality-{{modality}}_pretrain-{{pretrain}}.log",
    conda:
        "../../envs/ssl.yaml"
    container:
        CONTAINERS.format(family="ssl")
    script:
        "../scripts/ssl_pretrain.py"


rule ssl_crossmodal:
    input:
        eeg_cohort=lambda wc: [] if wc.pretrain == "corpus" else window_store("eeg"),
        fmri_cohort=lambda wc: [] if wc.pretrain == "corpus" else window_store("fmri"),
        eeg_corpus=lambda wc: corpus_stores("eeg") if wc.pretrain == "corpus" else [],
        fmri_corpus=lambda wc: corpus_stores("fmri") if wc.pretrain == "corpus" else [],
        folds=FOLDS if TRAIN_FOLDS else [],
    output:
        model=f"{OUT}/group/ssl/crossmodal_pretrain-{{pretrain}}_model.pt",
        card=f"{OUT}/group/ssl/crossmodal_pretrain-{{pretrain}}_card.json",
        history=f"{OUT}/group/ssl/crossmodal_pretrain-{{pretrain}}_loss.tsv",
        figure=report(
            f"{OUT}/group/ssl/crossmodal_pretrain-{{pretrain}}_loss.png",
            caption="../report/ssl_loss.rst",
            category="2. Self-supervised pretraining",
        ),
    params:
        settings=lambda wc: config["ssl"]["crossmodal"]
        | {m: ssl_settings(m) for m in ("eeg", "fmri")}
        | {"seed": config["ssl"]["seed"], "device": config["ssl"]["device"]},
        datasets=lambda wc: {
            m: corpus_datasets(m) if wc.pretrain == "corpus" else [COHORT_DATASET]
            for m in ("eeg", "fmri")
        },
    threads: 2 + config["ssl"]["loader_workers"]
    resources:
        gpu=0,
        loader_workers=config["ssl"]["loader_workers"],
    log:
        f"{OUT}/logs/ssl_crossmodal/pretrain-{{pretrain}}.log",
    conda:
        "../../envs/ssl.yaml"
    container:
        CONTAINERS.format(family="ssl")
    script:
        "../scripts/ssl_crossmodal.py"


rule ssl_embed:
    input:
        models=encoder_checkpoints,
        # model cards: the cohort is checked against what each encoder saw
        cards=lambda wc: encoder_checkpoints(wc, "card"),
        array=f"{OUT}/group/{{modality}}/windows.npy",
        table=f"{OUT}/group/{{modality}}/windows.tsv",
        sidecar=f"{OUT}/group/{{modality}}/windows.json",
    output:
        windows=f"{OUT}/group/ssl/modality-{{modality}}_encoder-{{encoder}}_windows.parquet",
        participants=f"{OUT}/group/ssl/modality-{{modality}}_encoder-{{encoder}}_participants.parquet",
    log:
        f"{OUT}/logs/ssl_embed/modality-{{modality}}_encoder-{{encoder}}.log",
    params:
        pretrain=PRETRAIN,
        dataset=COHORT_DATASET,
    conda:
        "../../envs/ssl.yaml"
    container:
        CONTAINERS.format(family="ssl")
    script:
        "../scripts/ssl_embed.py"


rule ssl_foundation_embed:
    input:
        array=f"{OUT}/group/eeg/windows.npy",
        table=f"{OUT}/group/eeg/windows.tsv",
        sidecar=f"{OUT}/group/eeg/windows.json",
        weights=FOUNDATION_WEIGHTS,
    output:
        windows=f"{OUT}/group/ssl/modality-eeg_encoder-foundation_windows.parquet",
        participants=f"{OUT}/group/ssl/modality-eeg_encoder-foundation_participants.parquet",
        card=f"{OUT}/group/ssl/modality-eeg_encoder-foundation_card.json",
    params:
        settings={k: config["ssl"]["foundation"][k] for k in ("model", "weights", "sha256")}
        | {"device": config["ssl"]["device"]},
    threads: 2
    resources:
        gpu=0,
    log:
        f"{OUT}/logs/ssl_foundation_embed.log",
    conda:
        "../../envs/ssl.yaml"
    container:
        CONTAINERS.format(family="ssl")
    script:
        "../scripts/ssl_foundation_embed.py"


rule ssl_finetune:
    input:
        models=encoder_checkpoints,
        cards=lambda wc: encoder_checkpoints(wc, "card"),
        array=f"{OUT}/group/{{modality}}/windows.npy",
        table=f"{OUT}/group/{{modality}}/windows.tsv",
        sidecar=f"{OUT}/group/{{modality}}/windows.json",
        participants=rules.bids_index.output.participants,
        folds=FOLDS if TRAIN_FOLDS else [],
    output:
        f"{OUT}/group/ssl/modality-{{modality}}_encoder-{{encoder}}_finetuned.tsv",
    params:
        settings=FINETUNE_SETTINGS,
        pretrain=PRETRAIN,
        dataset=COHORT_DATASET,
        column=config["ssl"]["probe"]["column"],
        n_splits=config["ssl"]["probe"]["n_splits"],
        fractions=PROBE_FRACTIONS,
    threads: 2
    resources:
        gpu=0,
    log:
        f"{OUT}/logs/ssl_finetune/modality-{{modality}}_encoder-{{encoder}}.log",
    conda:
        "../../envs/ssl.yaml"
    container:
        CONTAINERS.format(family="ssl")
    script:
        "../scripts/ssl_finetune.py"


rule ssl_foundation_finetune:
    input:
        array=f"{OUT}/group/eeg/windows.npy",
        table=f"{OUT}/group/eeg/windows.tsv",
        sidecar=f"{OUT}/group/eeg/windows.json",
        weights=FOUNDATION_WEIGHTS,
        participants=rules.bids_index.output.participants,
        folds=FOLDS if TRAIN_FOLDS else [],
    output:
        f"{OUT}/group/ssl/modality-eeg_encoder-foundation_finetuned.tsv",
    params:
        settings={k: config["ssl"]["foundation"][k] for k in ("model", "weights", "sha256")}
        | {"device": config["ssl"]["device"]},
        finetuning=FINETUNE_SETTINGS,
        column=config["ssl"]["probe"]["column"],
        n_splits=config["ssl"]["probe"]["n_splits"],
        fractions=PROBE_FRACTIONS,
    threads: 2
    resources:
        gpu=0,
    log:
        f"{OUT}/logs/ssl_foundation_finetune.log",
    conda:
        "../../envs/ssl.yaml"
    container:
        CONTAINERS.format(family="ssl")
    script:
        "../scripts/ssl_foundation_finetune.py"


rule ssl_finetune_features:
    input:
        models=lambda wc: [] if wc.encoder == "foundation" else encoder_checkpoints(wc),
        cards=lambda wc: [] if wc.encoder == "foundation" else encoder_checkpoints(wc, "card"),
        weights=lambda wc: FOUNDATION_WEIGHTS if wc.encoder == "foundation" else [],
        array=f"{OUT}/group/{{modality}}/windows.npy",
        table=f"{OUT}/group/{{modality}}/windows.tsv",
        sidecar=f"{OUT}/group/{{modality}}/windows.json",
        participants=rules.bids_index.output.participants,
        folds=FOLDS,
    output:
        f"{OUT}/group/ssl/modality-{{modality}}_encoder-{{encoder}}_target-{{target}}"
        "_desc-finetuned_participants.parquet",
    wildcard_constraints:
        encoder="ssl|random|crossmodal|foundation",
    params:
        settings=FINETUNE_SETTINGS,
        # each encoder's own inputs only: a change to the others reruns none of its jobs
        foundation=lambda wc: (
            {k: config["ssl"]["foundation"][k] for k in ("model", "weights", "sha256")}
            | {"device": config["ssl"]["device"]}
            if wc.encoder == "foundation"
            else {}
        ),
        pretrain=lambda wc: [] if wc.encoder == "foundation" else PRETRAIN,
        dataset=lambda wc: None if wc.encoder == "foundation" else COHORT_DATASET,
    threads: 2
    resources:
        gpu=0,
    log:
        f"{OUT}/logs/ssl_finetune_features/modality-{{modality}}_encoder-{{encoder}}_target-{{target}}.log",
    conda:
        "../../envs/ssl.yaml"
    container:
        CONTAINERS.format(family="ssl")
    script:
        "../scripts/ssl_finetune_features.py"


rule ssl_probe:
    input:
        participants=rules.bids_index.output.participants,
        windows=lambda wc: expand(
            rules.ssl_embed.output.windows, modality=wc.modality, encoder=SSL_ENCODERS
        ),
        folds=FOLDS if TRAIN_FOLDS else [],
        array=f"{OUT}/group/{{modality}}/windows.npy",
        table=f"{OUT}/group/{{modality}}/windows.tsv",
        sidecar=f"{OUT}/group/{{modality}}/windows.json",
        foundation=lambda wc: (
            rules.ssl_foundation_embed.output.windows if FOUNDATION and wc.modality == "eeg" else []
        ),
        # the encoders fine-tuned inside the same splits (ssl.finetune)
        finetuned=lambda wc: [
            (
                rules.ssl_foundation_finetune.output[0]
                if encoder == "foundation"
                else expand(rules.ssl_finetune.output[0], modality=wc.modality, encoder=encoder)[0]
            )
            for encoder in FINETUNE
            if encoder != "foundation" or wc.modality == "eeg"
        ],
    output:
        table=f"{OUT}/group/ssl/modality-{{modality}}_probe.tsv",
        figure=report(
            f"{OUT}/group/ssl/modality-{{modality}}_probe.png",
            caption="../report/ssl_probe.rst",
            category="2. Self-supervised pretraining",
        ),
    params:
        column=config["ssl"]["probe"]["column"],
        n_splits=config["ssl"]["probe"]["n_splits"],
        fractions=PROBE_FRACTIONS,
        seed=config["ssl"]["seed"],
        encoders=SSL_ENCODERS,
        bands=config["eeg"]["bands"],
    log:
        f"{OUT}/logs/ssl_probe/modality-{{modality}}.log",
    conda:
        "../../envs/ssl.yaml"
    container:
        CONTAINERS.format(family="ssl")
    script:
        "../scripts/ssl_probe.py"


rule ssl:
    input:
        expand(rules.ssl_pretrain.output, modality=MODALITIES, pretrain=PRETRAIN),
        expand(rules.ssl_crossmodal.output, pretrain=PRETRAIN) if CROSSMODAL else [],
        rules.ssl_foundation_embed.output if FOUNDATION else [],


rule embeddings:
    input:
        expand(rules.ssl_embed.output, modality=MODALITIES, encoder=SSL_ENCODERS),
        expand(rules.ssl_probe.output, modality=MODALITIES) if PROBE else [],
