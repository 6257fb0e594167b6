# Prediction with baselines and null tests, and subtyping with its falsification.


rule outer_folds:
    input:
        rules.bids_index.output.participants,
    output:
        FOLDS,
    params:
        targets=TARGETS or config["downstream"]["targets"],
        n_folds=config["downstream"]["outer_folds"],
        seed=config["downstream"]["seed"],
        per_fold_encoders=TRAIN_FOLDS,
    log:
        f"{OUT}/logs/outer_folds.log",
    benchmark:
        f"{OUT}/benchmarks/outer_folds.tsv"
    conda:
        "../../envs/stats.yaml"
    container:
        CONTAINERS.format(family="stats")
    script:
        "../scripts/outer_folds.py"


rule fmri_states:
    input:
        timeseries=FMRI_SERIES,
        runs=f"{OUT}/group/fmri/exclusions.tsv",
        parcels=f"{OUT}/group/fmri/parcels.tsv",
        folds=FOLDS,
    output:
        FMRI_STATES,
    params:
        participants=[f"sub-{r.subject}" for r in FMRI_RUNS],
        settings=config["downstream"]["states"],
        seed=config["downstream"]["seed"],
    log:
        f"{OUT}/logs/fmri_states.log",
    conda:
        "../../envs/stats.yaml"
    container:
        CONTAINERS.format(family="stats")
    script:
        "../scripts/fmri_states.py"


rule confound_features:
    input:
        participants=rules.bids_index.output.participants,
        motion=MOTION_QC,
    output:
        FEATURES["confounds"],
    params:
        columns=config["downstream"]["confounds"],
    log:
        f"{OUT}/logs/confound_features.log",
    benchmark:
        f"{OUT}/benchmarks/confound_features.tsv"
    conda:
        "../../envs/stats.yaml"
    container:
        CONTAINERS.format(family="stats")
    script:
        "../scripts/confound_features.py"


rule predict_target:
    input:
        participants=rules.bids_index.output.participants,
        features=lambda wc: target_features(wc).values(),
        folds=FOLDS,
    output:
        metrics=f"{OUT}/group/predict/target-{{target}}_metrics.tsv",
        predictions=f"{OUT}/group/predict/target-{{target}}_predictions.tsv",
        splits=f"{OUT}/group/predict/target-{{target}}_splits.tsv",
        site_probe=f"{OUT}/group/predict/target-{{target}}_siteprobe.tsv",
        label_efficiency=f"{OUT}/group/predict/target-{{target}}_labelefficiency.tsv",
        figure=report(
            f"{OUT}/group/predict/target-{{target}}_metrics.png",
            caption="../report/predict.rst",
            category="3. Prediction",
        ),
        predictions_figure=report(
            f"{OUT}/group/predict/target-{{target}}_predictions.png",
            caption="../report/predictions.rst",
            category="3. Prediction",
        ),
        label_efficiency_figure=report(
            f"{OUT}/group/predict/target-{{target}}_labelefficiency.png",
            caption="../report/label_efficiency.rst",
            category="3. Prediction",
        ),
    params:
        names=lambda wc: list(target_features(wc)),
        pretraining=lambda wc: {
            n: PRETRAINING.get(PRETRAIN[0], "train_folds") for n in SSL_SETS
        }
        | finetuned_pretraining_of(wc),
        finetuned=lambda wc: list(PLAN.finetuned.get(wc.target, {})),
        settings=settings_of("downstream", *PredictionSettings.keys()),
    threads: 2
    resources:
        # from the feature tables' shapes, when they exist (brainrep.predict.memory_mb)
        mem_mb=lambda wc, input, threads, attempt: attempt
        * predict_memory_mb(
            input.features,
            n_jobs=threads,
            permutations=config["downstream"]["n_permutations"] > 0,
            model=config["downstream"]["model"],
            nuisance=bool(config["downstream"]["deconfound"] or config["downstream"]["combat"]),
        ),
    log:
        f"{OUT}/logs/predict/target-{{target}}.log",
    benchmark:
        f"{OUT}/benchmarks/predict/target-{{target}}.tsv"
    conda:
        "../../envs/stats.yaml"
    container:
        CONTAINERS.format(family="stats")
    script:
        "../scripts/predict.py"


rule subtype_participants:
    input:
        participants=rules.bids_index.output.participants,
        motion=MOTION_QC,
        features=[FEATURES[n] for n in SUBTYPE_SETS],
    output:
        summary=f"{OUT}/group/subtype/summary.tsv",
        stability=f"{OUT}/group/subtype/stability.tsv",
        assignments=f"{OUT}/group/subtype/assignments.tsv",
        figure=report(
            f"{OUT}/group/subtype/stability.png",
            caption="../report/subtype.rst",
            category="4. Subtyping",
        ),
        profiles=f"{OUT}/group/subtype/profiles.tsv",
        profiles_figure=report(
            f"{OUT}/group/subtype/profiles.png",
            caption="../report/subtype_profiles.rst",
            category="4. Subtyping",
        ),
    params:
        names=SUBTYPE_SETS,
        settings=settings_of("downstream", *SubtypeStageSettings.keys()),
    log:
        f"{OUT}/logs/subtype.log",
    conda:
        "../../envs/stats.yaml"
    container:
        CONTAINERS.format(family="stats")
    script:
        "../scripts/subtype.py"


rule subtype_multiview:
    input:
        participants=rules.bids_index.output.participants,
        motion=MOTION_QC,
        features=lambda wc: FEATURES[config["downstream"]["multiview"]["feature_set"]],
    output:
        summary=f"{OUT}/group/subtype/multiview.tsv",
        scores=f"{OUT}/group/subtype/multiview_scores.tsv",
    params:
        settings=settings_of("downstream", *MultiviewStageSettings.keys()),
    log:
        f"{OUT}/logs/subtype_multiview.log",
    conda:
        "../../envs/stats.yaml"
    container:
        CONTAINERS.format(family="stats")
    script:
        "../scripts/subtype_multiview.py"


rule predict:
    input:
        expand(rules.predict_target.output, target=TARGETS),


rule subtype:
    input:
        rules.subtype_participants.output if SUBTYPE_SETS else [],
        rules.subtype_multiview.output if MULTIVIEW else [],
