# Self-supervised pretraining per modality, then embeddings from the trained and the
# random-init encoder (same architecture, same initial weights).


rule ssl_pretrain:
    input:
        array=f"{OUT}/group/{{modality}}/windows.npy",
        table=f"{OUT}/group/{{modality}}/windows.tsv",
    output:
        model=f"{OUT}/group/ssl/modality-{{modality}}_model.pt",
        history=f"{OUT}/group/ssl/modality-{{modality}}_loss.tsv",
        figure=report(
            f"{OUT}/group/ssl/modality-{{modality}}_loss.png",
            caption="../report/ssl_loss.rst",
            category="2. Self-supervised pretraining",
        ),
    params:
        settings=lambda wc: config["ssl"][wc.modality]
        | {"seed": config["ssl"]["seed"], "device": config["ssl"]["device"]},
    threads: 2
    resources:
        gpu=0,
    log:
        f"{OUT}/logs/ssl_pretrain/modality-{{modality}}.log",
    conda:
        "../../envs/ssl.yaml"
    container:
        CONTAINERS.format(family="ssl")
    script:
        "../scripts/ssl_pretrain.py"


rule ssl_embed:
    input:
        model=rules.ssl_pretrain.output.model,
        array=rules.ssl_pretrain.input.array,
        table=rules.ssl_pretrain.input.table,
    output:
        windows=f"{OUT}/group/ssl/modality-{{modality}}_encoder-{{encoder}}_windows.parquet",
        participants=f"{OUT}/group/ssl/modality-{{modality}}_encoder-{{encoder}}_participants.parquet",
    log:
        f"{OUT}/logs/ssl_embed/modality-{{modality}}_encoder-{{encoder}}.log",
    conda:
        "../../envs/ssl.yaml"
    container:
        CONTAINERS.format(family="ssl")
    script:
        "../scripts/ssl_embed.py"


rule ssl:
    input:
        expand(rules.ssl_pretrain.output, modality=MODALITIES),


rule embeddings:
    input:
        expand(rules.ssl_embed.output, modality=MODALITIES, encoder=["ssl", "random"]),
