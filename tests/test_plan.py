"""The plan is built from the validated config and the dataset, without Snakemake."""

from conftest import SCHEMA

from brainrep.config import validate_config
from brainrep.plan import build_plan


def test_the_demo_plan_lists_every_feature_set_and_encoder():
    config = validate_config({"demo": {"enabled": True},
                              "ssl": {"crossmodal": {"enabled": True},
                                      "pretrain_participants": "all"}}, SCHEMA)
    plan = build_plan(config, "results/demo")
    assert plan.modalities == ["eeg", "fmri"]
    assert len(plan.inputs.eeg) == len(plan.inputs.bold) == 40
    assert list(plan.features) == [
        "confounds", "eeg_bandpower", "eeg_riemann", "fmri_connectivity", "fmri_tangent",
        "fmri_states", "ssl_eeg", "random_eeg", "crossmodal_eeg", "ssl_fmri", "random_fmri",
        "crossmodal_fmri"]
    assert plan.features["ssl_eeg"] == (
        "results/demo/group/ssl/modality-eeg_encoder-ssl_participants.parquet")
    assert plan.pretrain == ["all"] and plan.targets == ["diagnosis"]
    # the target's own tables: ssl.finetune.encoders (ssl, random; no foundation model here)
    # fine-tuned with it inside each outer fold, never clustered (no folds there)
    assert plan.finetuned == {"diagnosis": {
        f"{e}_{m}_finetuned": f"results/demo/group/ssl/modality-{m}_encoder-{e}_"
                              "target-diagnosis_desc-finetuned_participants.parquet"
        for m in ("eeg", "fmri") for e in ("ssl", "random")}}
    assert plan.subtype_sets == ["eeg_bandpower", "fmri_connectivity", "ssl_eeg", "ssl_fmri"]
    assert plan.multiview and plan.motion_qc == ["results/demo/group/fmri/qc.tsv"]
    assert plan.skipped == []


def test_encoders_pretrained_per_fold_by_default_are_not_clustered():
    config = validate_config({"demo": {"enabled": True}}, SCHEMA)
    plan = build_plan(config, "results/x")
    assert plan.pretrain == ["fold0", "fold1", "fold2", "fold3", "fold4"]
    assert plan.subtype_sets == ["eeg_bandpower", "fmri_connectivity"]


def test_targets_fine_tune_without_a_probe_unless_told_not_to():
    """ssl.finetune.encoders are fine-tuned with each target (the foundation model on EEG
    only) whether or not the window-level probe runs; ssl.finetune.targets: false keeps them
    out of the prediction tables."""
    config = validate_config({"demo": {"enabled": True},
                              "downstream": {"targets": ["diagnosis", "anhedonia"]},
                              "ssl": {"crossmodal": {"enabled": True},
                                      "finetune": {"encoders": ["crossmodal", "foundation"]},
                                      "foundation": {"model": "Labram", "weights": "w.pt",
                                                     "sha256": "0" * 64}}}, SCHEMA)
    plan = build_plan(config, "results/x")
    assert not plan.probe and plan.finetune_encoders == []
    assert {target: list(sets) for target, sets in plan.finetuned.items()} == {
        target: ["crossmodal_eeg_finetuned", "foundation_eeg_finetuned",
                 "crossmodal_fmri_finetuned"] for target in ("diagnosis", "anhedonia")}
    assert plan.finetuned["anhedonia"]["foundation_eeg_finetuned"] == (
        "results/x/group/ssl/modality-eeg_encoder-foundation_target-anhedonia_"
        "desc-finetuned_participants.parquet")
    config["ssl"]["finetune"]["targets"] = False
    assert build_plan(config, "results/x").finetuned == {"diagnosis": {}, "anhedonia": {}}


def test_one_modality_skips_crossmodal_and_a_small_cohort_skips_subtyping_saying_why():
    config = validate_config({"demo": {"enabled": True, "n_subjects": 12},
                              "fmri": {"enabled": False},
                              "ssl": {"crossmodal": {"enabled": True}, "probe": {
                                  "column": "diagnosis"}, "finetune": {
                                  "encoders": ["ssl", "crossmodal"]}}}, SCHEMA)
    plan = build_plan(config, "results/x")
    assert plan.modalities == ["eeg"] and not plan.crossmodal
    assert plan.ssl_encoders == ["ssl", "random"] and plan.finetune_encoders == ["ssl"]
    assert any(line.startswith("fine-tuning of ['crossmodal']") for line in plan.skipped)
    assert plan.subtype_sets == [] and not plan.multiview
    assert any(line.startswith("ssl.crossmodal: it needs EEG and fMRI") for line in plan.skipped)
    assert any("downstream.subtyping" in line for line in plan.skipped)


def test_parcellated_series_are_batched_in_bids_order(tmp_path):
    subjects = ["05", "01", "04", "02", "03"]
    (tmp_path / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    (tmp_path / "participants.tsv").write_text(
        "participant_id\n" + "".join(f"sub-{s}\n" for s in subjects))
    for subject in subjects:
        func = tmp_path / f"sub-{subject}" / "func"
        func.mkdir(parents=True)
        (func / f"sub-{subject}_task-rest_seg-CC200_stat-mean_timeseries.tsv").write_text("a\tb\n")
    config = validate_config({"demo": {"enabled": False}, "bids": {"root": str(tmp_path)},
                              "eeg": {"enabled": False},
                              "fmri": {"timeseries": str(tmp_path), "atlas": {"name": "CC200"},
                                       "recordings_per_job": 2}}, SCHEMA)
    plan = build_plan(config, "results/x")
    assert [[run.subject for run in batch] for batch in plan.connectivity_batches] == [
        ["01", "02"], ["03", "04"], ["05"]]


def test_without_ssl_the_plan_has_classical_feature_sets_only():
    config = validate_config({"demo": {"enabled": True}, "ssl": {"enabled": False,
                                                                 "crossmodal": {"enabled": True}}},
                             SCHEMA)
    plan = build_plan(config, "results/x")
    assert list(plan.features) == ["confounds", "eeg_bandpower", "eeg_riemann",
                                   "fmri_connectivity", "fmri_tangent", "fmri_states"]
    assert plan.ssl_sets == plan.ssl_encoders == plan.pretrain == []
    assert plan.finetuned == {"diagnosis": {}}
    assert not plan.crossmodal and not plan.probe and plan.skipped == []
    assert plan.subtype_sets == ["eeg_bandpower", "fmri_connectivity"]


def test_without_a_target_encoders_pretrain_on_everyone_and_say_so():
    config = validate_config({"demo": {"enabled": True},
                              "downstream": {"targets": []}}, SCHEMA)
    plan = build_plan(config, "results/x")
    assert plan.pretrain == ["all"] and not plan.train_folds
    assert any("pretraining: transductive" in line for line in plan.skipped)
