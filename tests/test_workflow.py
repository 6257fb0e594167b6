"""Real Snakemake runs of the demo and of the null demo, in a copy of the workflow."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import copy_workflow, shared_dataset
from sklearn.metrics import adjusted_rand_score

from brainrep.ssl import linear_probe

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args],
                         cwd=workdir, capture_output=True, text=True)
    if check and run.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{run.stderr[-5000:]}")
    return run


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = copy_workflow(tmp_path_factory.mktemp("workflow"))
    snakemake(work)
    return work


@pytest.fixture(scope="module")
def null_results(workdir) -> Path:
    # CI time: the label-efficiency curves (one repeat, every label only: the probe's
    # fine-tuning too) and the bootstrap intervals only (their own draws); SSL and subtyping as
    # in the example. With SSL at 10 epochs, one of the four subtyping solutions passed its
    # own null at p = 0.02: one in four tests at 0.05, uncorrected.
    lighter = workdir / "null_lighter.yaml"
    lighter.write_text("downstream: {n_bootstrap: 200, label_repeats: 1, label_fractions: [1.0]}\n")
    snakemake(workdir, "--configfile", "config/examples/demo_null.yaml", str(lighter))
    return workdir / "results" / "demo_null"


def _metrics(results: Path) -> pd.DataFrame:
    table = pd.read_csv(results / "group/predict/target-diagnosis_metrics.tsv", sep="\t")
    auroc = table[(table.metric == "auroc") & (table.cv_scheme == "stratified_group_kfold")]
    return auroc.set_index("feature_set")


def _subtype_agreement(results: Path) -> pd.Series:
    truth = pd.read_csv(results / "bids/sourcedata/truth/participants_truth.tsv",
                        sep="\t").set_index("participant_id")
    assignments = pd.read_csv(results / "group/subtype/assignments.tsv", sep="\t")
    return assignments.groupby("feature_set").apply(
        lambda g: adjusted_rand_score(truth.loc[g.participant_id, "subtype"], g.subtype))


def test_demo_writes_every_stage_and_the_report(workdir):
    results = workdir / "results" / "demo"
    assert len(list(results.glob("sub-*/eeg/*_epo.fif"))) == 40
    assert len(list(results.glob("sub-*/func/*_relmat.tsv"))) == 40
    for modality in ("eeg", "fmri"):
        for encoder in ("ssl", "random", "crossmodal"):
            for level in ("windows", "participants"):
                assert (results / f"group/ssl/modality-{modality}_encoder-{encoder}"
                                  f"_{level}.parquet").is_file()
        probe = pd.read_csv(results / f"group/ssl/modality-{modality}_probe.tsv", sep="\t")
        classical = {"bandpower", "riemann"} if modality == "eeg" else set()
        frozen = {"ssl", "random", "crossmodal"}
        assert set(probe["encoder"]) == frozen | classical | {"ssl_finetuned", "random_finetuned"}
        # the label-efficiency curve: every row at each fraction, on the same splits
        fractions = probe.groupby("encoder")["fraction"].apply(sorted)
        assert all(f == [0.1, 0.25, 0.5, 1] for f in fractions), fractions
        assert probe["n_folds"].nunique() == 1
        assert (results / f"group/ssl/modality-{modality}_probe.png").stat().st_size > 10_000
    metrics = pd.read_csv(results / "group/predict/target-diagnosis_metrics.tsv", sep="\t")
    assert {"balanced_accuracy", "auroc", "auc_pr"} <= set(metrics.metric)
    assert {"ssl_eeg", "random_eeg", "crossmodal_eeg", "eeg_bandpower", "eeg_riemann",
            "fmri_connectivity", "fmri_tangent", "fmri_states", "confounds"} <= set(
        metrics.feature_set)
    assert (metrics.loc[metrics.metric == "auroc", "n_permutations"] == 100).all()  # both schemes
    # every encoder pretrained once, on the simulated corpus, never on the cohort
    ssl_rows = metrics[metrics.feature_set.str.startswith(("ssl_", "random_", "crossmodal_"))]
    frozen = ssl_rows[~ssl_rows.feature_set.str.endswith("_finetuned")]
    assert set(frozen["pretraining"]) == {"corpus"}
    # and fine-tuned with the diagnosis inside each outer fold (ssl.finetune.encoders), from
    # the corpus encoder or from scratch: scored in those folds only
    tuned = ssl_rows[ssl_rows.feature_set.str.endswith("_finetuned")]
    assert tuned.groupby("feature_set")["pretraining"].unique().map(list).to_dict() == {
        "ssl_eeg_finetuned": ["corpus"], "random_eeg_finetuned": ["none"],
        "ssl_fmri_finetuned": ["corpus"], "random_fmri_finetuned": ["none"]}
    assert set(tuned["cv_scheme"]) == {"stratified_group_kfold"}
    cohort = set(pd.read_csv(results / "bids/participants.tsv", sep="\t")["participant_id"])
    for model in ("modality-eeg_pretrain-corpus", "modality-fmri_pretrain-corpus"):
        card = json.loads((results / f"group/ssl/{model}_card.json").read_text())
        seen = {participant for _, participant in card["participants"]}
        assert len(seen) == 40 and not cohort & seen  # sub-101 to sub-140
        assert card["n_recordings"] == 40 and not card["labels_used"]
    snakemake(workdir, "--report", "results/demo/report.html")
    assert (results / "report.html").stat().st_size > 10_000


def _rendered_text(page: Path) -> str:
    """The text headless Chromium displays for ``page`` once its scripts have run."""
    import html
    import re
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium here (apt-get install chromium)")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=15000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=180, check=True).stdout
    dom = re.sub(r"<script.*?</script>|<style.*?</style>", "", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def test_report_first_page_shows_the_verdict_in_a_browser(workdir):
    results = workdir / "results" / "demo"
    snakemake(workdir, "--report", "results/demo/report.html")
    text = _rendered_text(results / "report.html")
    verdicts = pd.read_csv(results / "group/verdict.tsv", sep="\t")
    scheme = verdicts[verdicts.cv_scheme == "stratified_group_kfold"]
    above = int(scheme["beats_chance"].astype(str).eq("True").sum())
    assert f"diagnosis (stratified group kfold, auroc): {above} of {len(scheme)} feature " \
           "sets beat chance" in text
    assert "does not beat its random-init twin" in text or "beats its random-init twin" in text
    assert "the best classical baseline" in text and "confound-only model" in text
    assert "80 of 80 recordings included" in text  # the exclusion summary
    assert "Reproduce: snakemake --cores all" in text  # provenance
    pages = sorted((results / "qc").glob("sub-*.html"))
    assert len(pages) == 40
    page = _rendered_text(pages[0])
    assert "Recordings and their status" in page and "framewise displacement" in page
    assert 'href="sub-001.html"' in (results / "qc/group.html").read_text()


def test_second_run_has_nothing_to_do(workdir):
    run = snakemake(workdir, "-n")
    assert "Nothing to be done" in run.stdout + run.stderr


def test_prediction_job_asks_for_memory_from_its_feature_tables(workdir):
    """The predict_target job's mem_mb is brainrep.predict.memory_mb of the tables it reads,
    with its threads as permutation workers (the SLURM profile no longer overrides it)."""
    from brainrep.predict import memory_mb

    run = snakemake(workdir, "-n", "--forcerun", "predict_target", "--until", "predict_target")
    block = run.stdout.split("rule predict_target:")[1].split("\n\n")[0]
    fields = dict(line.strip().split(": ", 1) for line in block.splitlines() if ": " in line)
    tables = [path for path in fields["input"].split(", ") if "/features/" in path
              or "_participants.parquet" in path]
    resources = dict(item.split("=") for item in fields["resources"].split(", "))
    expected = memory_mb([workdir / path for path in tables], n_jobs=2)
    assert int(resources["mem_mb"]) == expected > memory_mb([], n_jobs=2)
    assert "predict_target:mem_mb" not in (workdir / "profiles/slurm/config.yaml").read_text()


def _planned_jobs(workdir: Path) -> dict[str, int]:
    run = snakemake(workdir, "-n", "--quiet", "rules")
    rows = [line.split() for line in run.stdout.splitlines()]
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit()}


def test_changing_one_recording_reruns_only_its_dependents(workdir):
    source = workdir / "results/demo/bids/sub-007/eeg/sub-007_task-rest_eeg.vhdr"
    original, stat = source.read_bytes(), source.stat()
    try:
        os.utime(source)  # newer, same content: Snakemake compares checksums, nothing to do
        assert _planned_jobs(workdir) == {}
        source.write_bytes(original + b"; edited by a test\n")  # a BrainVision comment line
        jobs = _planned_jobs(workdir)
        assert jobs["eeg_preprocess"] == 1
        assert "fmri_parcellate" not in jobs and "simulate_demo" not in jobs
        assert {"eeg_windows", "ssl_embed", "predict_target"} <= set(jobs)
        assert "ssl_pretrain" not in jobs  # the corpus encoder is pretrained once
    finally:
        source.write_bytes(original)
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _planned_jobs(workdir) == {}


def test_planted_truth_is_recovered(workdir):
    results = workdir / "results" / "demo"
    auroc = _metrics(results)
    for name in ("eeg_bandpower", "ssl_eeg"):
        assert auroc.loc[name, "mean"] > 0.9 and auroc.loc[name, "p_value"] < 0.05
    assert auroc.loc["confounds", "p_value"] > 0.05  # diagnosis is not carried by age/sex/site
    agreement = _subtype_agreement(results)
    assert agreement["eeg_bandpower"] > 0.8 and agreement["ssl_eeg"] > 0.8
    multiview = pd.read_csv(results / "group/subtype/multiview.tsv", sep="\t").iloc[0]
    assert multiview["cca_p_value"] < 0.05 and multiview["r_out_of_sample_cv1"] > 0.3


def test_a_continuous_symptom_score_is_predicted(workdir):
    """Any participants.tsv column is a target: the planted anhedonia score (subtype 1's
    symptom, whose subtype shows in EEG) gets R² and MAE with permutation p-values, where
    the confound-only model stays at chance. Every participant with a score is tested,
    diagnosis or not (the outer folds cover everyone)."""
    snakemake(workdir, "results/demo/group/predict/target-anhedonia_metrics.tsv")
    metrics = pd.read_csv(workdir / "results/demo/group/predict/target-anhedonia_metrics.tsv",
                          sep="\t")
    assert set(metrics["task"]) == {"continuous"}
    r2 = metrics[(metrics.metric == "r2") & (metrics.cv_scheme == "stratified_group_kfold")]
    r2 = r2.set_index("feature_set")
    assert r2.loc["eeg_bandpower", "mean"] > 0.4 and r2.loc["eeg_bandpower", "p_value"] < 0.05
    assert r2.loc["confounds", "mean"] < 0.1 and r2.loc["confounds", "p_value"] > 0.05
    participants = pd.read_csv(workdir / "results/demo/group/index/participants.tsv", sep="\t")
    assert participants["diagnosis"].isna().any()
    assert (r2["n_participants"] == participants["anhedonia"].notna().sum()).all()


def test_ssl_embeddings_separate_planted_subtypes_better_than_random_init(workdir):
    """Same linear probe, windows of the patients, folds grouped by participant: contrastive
    (EEG), masked (fMRI) and cross-modal encoders beat the random-init encoder of the same
    architecture on the hidden subtype labels."""
    results = workdir / "results" / "demo"
    truth = pd.read_csv(results / "bids/sourcedata/truth/participants_truth.tsv", sep="\t")
    accuracy = {}
    for modality in ("eeg", "fmri"):
        for encoder in ("ssl", "random", "crossmodal"):
            windows = pd.read_parquet(
                results / f"group/ssl/modality-{modality}_encoder-{encoder}_windows.parquet")
            patients = windows.merge(truth[truth.subtype > 0], on="participant_id")
            accuracy[modality, encoder] = linear_probe(patients, "subtype").mean()
    for modality in ("eeg", "fmri"):
        for trained in ("ssl", "crossmodal"):
            assert accuracy[modality, trained] > accuracy[modality, "random"] + 0.02, accuracy


def _assert_fold_encoders_saw_only_their_training_participants(results: Path, n_folds: int,
                                                                models: dict[str, str]) -> None:
    """One encoder per outer fold and model (``models``: name -> the window store it trains
    on), trained on exactly that fold's training participants that have windows: never on
    its test participants."""
    import torch

    folds = pd.read_csv(results / "group/predict/folds.tsv", sep="\t")
    assert sorted(folds["fold"].unique()) == list(range(n_folds))
    for model, store in models.items():
        windowed = set(pd.read_csv(results / f"group/{store}/windows.tsv", sep="\t")
                       ["participant_id"])
        for k in range(n_folds):
            training = set(folds.loc[folds.fold != k, "participant_id"]) & windowed
            seen = torch.load(results / f"group/ssl/{model}_pretrain-fold{k}_model.pt",
                              weights_only=True)["pretraining_participants"]
            assert training and set(seen) == training, (model, k)


def _assert_fold_encoders_never_saw_their_test_participants(results: Path, target: str,
                                                            n_folds: int, modality: str) -> None:
    """ssl.pretrain_participants: train_folds (the default): one encoder per outer fold
    (:func:`_assert_fold_encoders_saw_only_their_training_participants`), which the harness
    scores with that encoder only; every SSL output says train_folds, and no SSL row is scored
    leave-site-out (there are no site-level encoders)."""
    _assert_fold_encoders_saw_only_their_training_participants(
        results, n_folds, {f"modality-{modality}": modality})
    folds = pd.read_csv(results / "group/predict/folds.tsv", sep="\t")
    embeddings = pd.read_parquet(results / f"group/ssl/modality-{modality}_encoder-ssl_"
                                           "participants.parquet")
    assert sorted(embeddings["encoder_fold"].unique()) == sorted(folds["fold"].unique())
    assert set(embeddings["pretraining"]) == {"train_folds"}
    tuned = pd.read_parquet(results / f"group/ssl/modality-{modality}_encoder-ssl_target-"
                                      f"{target}_desc-finetuned_participants.parquet")
    assert sorted(tuned["encoder_fold"].unique()) == sorted(folds["fold"].unique())
    metrics = pd.read_csv(results / f"group/predict/target-{target}_metrics.tsv", sep="\t")
    ssl_rows = metrics[metrics.feature_set.str.startswith(("ssl_", "random_", "crossmodal_"))]
    pretraining = ssl_rows.groupby("feature_set")["pretraining"].unique().map(list).to_dict()
    assert pretraining == {f"ssl_{modality}": ["train_folds"],
                           f"random_{modality}": ["train_folds"],
                           f"ssl_{modality}_finetuned": ["train_folds"],
                           f"random_{modality}_finetuned": ["none"]}  # from scratch
    assert set(ssl_rows["cv_scheme"]) == {"stratified_group_kfold"}
    splits = pd.read_csv(results / f"group/predict/target-{target}_splits.tsv", sep="\t")
    scored = splits[splits.cv_scheme == "stratified_group_kfold"].set_index("participant_id")
    assert (scored["fold"] == folds.set_index("participant_id").loc[scored.index, "fold"]).all()


def test_crossmodal_encoders_pretrained_per_fold_never_see_their_test_participants(tmp_path):
    """The per-fold example (config/examples/demo_train_folds.yaml, 3 outer folds) on 16
    participants, 1 epoch, up to its cross-modal encoders: each is trained on its fold's
    training participants only (the ABIDE and EEGMAT tests cover the single-modality ones)."""
    workdir = copy_workflow(tmp_path)
    (workdir / "small.yaml").write_text("demo: {n_subjects: 16}\n"
                                        "ssl: {crossmodal: {epochs: 1}}\n")
    models = [f"results/demo_train_folds/group/ssl/crossmodal_pretrain-fold{k}_model.pt"
              for k in range(3)]
    snakemake(workdir, *models, "results/demo_train_folds/group/predict/folds.tsv",
              "results/demo_train_folds/group/eeg/windows.tsv", "--configfile",
              "config/examples/demo_train_folds.yaml", "small.yaml")
    _assert_fold_encoders_saw_only_their_training_participants(
        workdir / "results/demo_train_folds", 3, {"crossmodal": "eeg"})


def test_null_demo_finds_nothing(null_results):
    auroc = _metrics(null_results)
    assert (auroc["p_value"] > 0.01).all(), auroc[["mean", "p_value"]]
    assert auroc["mean"].median() < 0.65
    summary = pd.read_csv(null_results / "group/subtype/summary.tsv", sep="\t")
    assert (summary["null_p_value"] > 0.05).all(), summary
    assert (_subtype_agreement(null_results).abs() < 0.3).all()
    multiview = pd.read_csv(null_results / "group/subtype/multiview.tsv", sep="\t").iloc[0]
    assert multiview["cca_p_value"] > 0.05
    page = (null_results / "report/front_page.rst").read_text()
    assert page.count("This solution does not hold.") == len(summary)
    assert "This solution holds." not in page


@pytest.mark.shared_data
def test_abide_example_runs_from_timeseries_to_leave_site_out(tmp_path):
    root = shared_dataset("abide-cc200")
    workdir = copy_workflow(tmp_path)
    override = workdir / "abide_here.yaml"  # the example's ../shared path, made absolute
    override.write_text(
        # 4 connectivity batches of the 163 runs
        f"bids: {{root: {root}}}\nfmri: {{timeseries: {root}, recordings_per_job: 50}}\n"
        # fewer draws than the example (CI time); nothing asserted here depends on them
        "ssl: {fmri: {epochs: 4}, finetune: {epochs: 2}}\n"
        "downstream: {n_permutations: 20, n_bootstrap: 200, label_repeats: 1,\n"
        "  subtyping: {n_null: 20, n_bootstrap: 10}, multiview: {n_permutations: 20}}\n")
    snakemake(workdir, "--configfile", "config/examples/abide.yaml", str(override))
    results = workdir / "results" / "abide"
    assert len(list(results.glob("sub-*/func/*_stat-correlation_relmat.tsv"))) == 163
    assert len(list((results / "logs/fmri_connectivity").glob("batch-*.log"))) == 4
    metrics = pd.read_csv(results / "group/predict/target-diagnosis_metrics.tsv", sep="\t")
    assert {"leave_site_out", "stratified_group_kfold"} <= set(metrics["cv_scheme"])
    assert {"fmri_connectivity", "ssl_fmri", "random_fmri"} <= set(metrics["feature_set"])
    ledger = pd.read_csv(results / "group/fmri/exclusions.tsv", sep="\t")
    excluded = ledger[ledger.status == "excluded"]
    # 3 runs have no signal in 13 to 59 % of the CC200 parcels (max 10 %)
    assert len(excluded) == 3 and excluded["message"].str.contains("fraction_empty_parcels").all()
    assert (metrics["n_participants"] == 160).all()
    parcels = pd.read_csv(results / "group/fmri/parcels.tsv", sep="\t")
    # a parcel empty in a few of the runs left is kept (imputed in training folds)
    assert parcels["kept"].sum() > 190 and (parcels["n_runs_missing"] > 0).any()
    probe = pd.read_csv(results / "group/predict/target-diagnosis_siteprobe.tsv",
                        sep="\t").set_index("feature_set")
    assert probe.loc["fmri_connectivity", "mean"] > 0.6  # 4 sites: chance is 0.25
    _assert_fold_encoders_never_saw_their_test_participants(results, "diagnosis", 5, "fmri")


@pytest.mark.shared_data
def test_eegmat_example_excludes_damaged_recordings_and_ssl_beats_random_init(tmp_path):
    """The EEG branch on real EDF recordings, two of them damaged (one truncated to half its
    size, one zero bytes): both are in the ledger and the study finishes on the other 18.
    Outputs, window counts, the classic effect (posterior alpha is higher at rest than during
    mental arithmetic), a linear probe of rest vs arithmetic on SSL window embeddings above the
    random-init encoder, and the prediction on what is left. With braindecode (the README's
    install), a LaBraM from a local weights file (saved from a random initialisation: the
    published file needs a network) runs frozen and fine-tuned beside them."""
    import importlib.util

    import mne

    from brainrep.eeg import band_power
    from brainrep.io import sha256

    root = tmp_path / "eegmat"
    shutil.copytree(shared_dataset("eegmat"), root)
    truncated = root / "sub-02/eeg/sub-02_task-rest_eeg.edf"
    truncated.write_bytes(truncated.read_bytes()[:truncated.stat().st_size // 2])
    (root / "sub-05/eeg/sub-05_task-arithmetic_eeg.edf").write_bytes(b"")
    workdir = copy_workflow(tmp_path / "workflow")
    override = workdir / "eegmat_here.yaml"
    override.write_text(f"bids: {{root: {root}}}\n"  # fewer draws than the example (CI time)
                        "downstream: {n_permutations: 20, n_bootstrap: 200, label_repeats: 1,\n"
                        # CI time: the probe fine-tunes with every label only (the demo
                        # covers the fractions)
                        "  label_fractions: [1.0]}\n")
    ssl = "finetune: {epochs: 2}"  # brainrep's encoders and the foundation model
    foundation = importlib.util.find_spec("braindecode") is not None
    if foundation:
        import torch

        from brainrep.ssl.foundation import FoundationEncoder

        torch.manual_seed(0)
        weights = tmp_path / "labram.pt"  # LaBraM's 2-s input at 200 Hz: 400 samples
        torch.save(FoundationEncoder("Labram", ["FP1", "CZ"], 400).net.state_dict(), weights)
        ssl += f", foundation: {{model: Labram, weights: {weights}, sha256: {sha256(weights)}}}"
    override.write_text(override.read_text() + f"ssl: {{{ssl}}}\n")
    results = workdir / "results" / "eegmat"
    snakemake(workdir, "eeg", "embeddings", "results/eegmat/group/exclusions.tsv",
              "results/eegmat/group/predict/target-count_quality_metrics.tsv",
              "--configfile", "config/examples/eegmat.yaml", str(override))
    ledger = pd.read_csv(results / "group/exclusions.tsv", sep="\t", keep_default_na=False)
    excluded = ledger[ledger.status == "excluded"].set_index("recording")
    assert excluded.loc["sub-02_task-rest", "reason"] == "truncated"
    assert excluded.loc["sub-05_task-arithmetic", "reason"] == "unreadable"
    assert excluded["stage"].eq("eeg_preprocess").all()
    qc = pd.read_csv(results / "group/eeg/qc.tsv", sep="\t", keep_default_na=False)
    written = [f for f in results.glob("sub-*/eeg/*_epo.fif") if f.stat().st_size]
    assert len(qc) == 18 and len(written) == 18  # excluded: empty placeholders
    windows = qc["duration_s"] // 2.0  # 2-s windows, no overlap
    assert ((qc["n_windows"] <= windows) & (qc["n_windows"] >= 0.9 * windows)).all()
    assert (qc["duration_s"].between(55, 70) == qc["recording"].str.contains("arithmetic")).all()
    detected = qc["bad_channels_detected"].str.split(";").map(lambda b: len([c for c in b if c]))
    assert detected.max() <= 6  # of 19: detection flags some channels, not most
    table = pd.read_csv(results / "group/eeg/windows.tsv", sep="\t")
    assert table.groupby("task").size().to_dict() == {
        task: int(qc[qc["recording"].str.contains(task)]["n_windows"].sum())
        for task in ("arithmetic", "rest")}
    higher_at_rest = 0
    complete = sorted({r.split("_")[0] for r in qc["recording"]} - {"sub-02", "sub-05"})
    for subject in complete:
        alpha = {}
        for task in ("rest", "arithmetic"):
            epochs = mne.read_epochs(results / subject / "eeg" / f"{subject}_task-{task}_epo.fif",
                                     verbose="error")
            data = epochs.get_data(picks=["P3", "P4", "Pz", "O1", "O2"])
            alpha[task] = band_power(data, epochs.info["sfreq"], {"alpha": [8, 13]}).mean()
        higher_at_rest += alpha["rest"] > alpha["arithmetic"]
    assert higher_at_rest >= 7  # of 8 (measured on all 10: 10)
    probe = pd.read_csv(results / "group/ssl/modality-eeg_probe.tsv", sep="\t")
    probe = probe[probe["fraction"] == 1].set_index("encoder")  # every training label
    accuracy = probe["mean"]
    assert accuracy["ssl"] > accuracy["random"]  # rest vs arithmetic, grouped by participant
    # the classical rows on the same windows and splits (reported, whichever is higher)
    assert {"bandpower", "riemann"} <= set(accuracy.index) and accuracy["bandpower"] > 0.5
    # fine-tuned with the label in the same splits, from the fold encoders and from scratch
    tuned = probe.loc[["ssl_finetuned", "random_finetuned"]]
    assert (tuned["n_participants"] == 10).all() and (tuned["n_folds"] == 4).all()
    assert tuned["pretraining"].to_dict() == {"ssl_finetuned": "train_folds",
                                              "random_finetuned": "none"}  # from scratch
    metrics = pd.read_csv(results / "group/predict/target-count_quality_metrics.tsv", sep="\t")
    assert (metrics["n_participants"] == 10).all()  # each damaged participant kept a recording
    if foundation:  # frozen and fine-tuned (probe and prediction), with its card
        assert {"foundation", "foundation_finetuned"} <= set(accuracy.index)
        assert probe.loc["foundation_finetuned", "n_participants"] == 10
        assert {"foundation_eeg", "foundation_eeg_finetuned"} <= set(metrics["feature_set"])
        card = json.loads((results / "group/ssl/modality-eeg_encoder-foundation_card.json")
                          .read_text())
        assert card["sha256"] == sha256(weights) and len(card["channels"]) == 19
    _assert_fold_encoders_never_saw_their_test_participants(results, "count_quality", 4, "eeg")
