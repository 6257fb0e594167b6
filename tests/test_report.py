"""The report's first page (verdict from the tables), its paired tests, QC pages and figures."""

import numpy as np
import pandas as pd
import pytest
from docutils.core import publish_parts
from jinja2 import Environment
from sklearn.metrics import balanced_accuracy_score, r2_score, roc_auc_score

from brainrep.fmri.settings import QcThresholds
from brainrep.plots import FEATURE_SETS, METRIC_RANGE, clipped_error, feature_set_colour
from brainrep.report.front_page import front_page, rst_section
from brainrep.report.qc_pages import Recording, group_page, participant_page
from brainrep.report.sentences import (
    exclusion_sentences,
    prediction_sentences,
    subtype_sentences,
    window_probe_sentences,
)
from brainrep.report.verdict import _metric_rows, paired_permutation_p, prediction_verdicts


def test_vectorised_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    truth = rng.random(30) < 0.4
    scores = rng.normal(size=(3, 30)) + truth
    assert np.allclose(_metric_rows(scores, truth, "auroc"),
                       [roc_auc_score(truth, s) for s in scores])
    labels = rng.integers(0, 3, 30)
    predicted = rng.integers(0, 3, (3, 30))
    assert np.allclose(_metric_rows(predicted, labels, "balanced_accuracy"),
                       [balanced_accuracy_score(labels, p) for p in predicted])
    y = rng.normal(size=30)
    guesses = y + rng.normal(size=(3, 30))
    assert np.allclose(_metric_rows(guesses, y, "r2"), [r2_score(y, g) for g in guesses])


def test_paired_test_finds_a_better_model_and_not_an_equal_one():
    rng = np.random.default_rng(1)
    truth = np.repeat([False, True], 30)
    good = truth + rng.normal(0, 0.5, 60)
    noise = rng.normal(0, 1, 60)
    assert paired_permutation_p(truth, good, noise, "auroc", 999, 0) < 0.01
    assert paired_permutation_p(truth, noise, good, "auroc", 999, 0) > 0.9
    assert paired_permutation_p(truth, good, good * 3 + 1, "auroc", 999, 0) == 1.0  # same ranks


def test_paired_test_is_calibrated_between_exchangeable_models():
    rng = np.random.default_rng(2)
    truth = np.repeat([False, True], 20)
    p_values = [paired_permutation_p(truth, truth + rng.normal(0, 1, 40),
                                     truth + rng.normal(0, 1, 40), "auroc", 199, seed)
                for seed in range(200)]
    assert 0.01 < np.mean(np.array(p_values) < 0.05) < 0.11
    assert 0.4 < np.median(p_values) < 0.6


def _tables(strength: dict[str, float], n: int = 40, seed: int = 0):
    """Metrics and out-of-fold predictions of a binary target for feature sets whose scores
    carry the label with the given strengths."""
    rng = np.random.default_rng(seed)
    y = np.repeat(["control", "patient"], n // 2)
    predictions, metrics = [], []
    for name, effect in strength.items():
        score = effect * (y == "patient") + rng.normal(0, 1, n)
        predictions.append(pd.DataFrame({
            "cv_scheme": "stratified_group_kfold", "feature_set": name,
            "participant_id": [f"sub-{i:02d}" for i in range(n)], "y_true": y,
            "y_pred": np.where(score > 0, "patient", "control"), "score": score}))
        auroc = roc_auc_score(y == "patient", score)
        metrics.append({"target": "diagnosis", "task": "binary", "positive_class": "patient",
                        "cv_scheme": "stratified_group_kfold", "feature_set": name,
                        "metric": "auroc", "estimate": auroc, "ci_low": auroc - 0.1,
                        "ci_high": min(auroc + 0.1, 1), "chance": 0.5,
                        "p_value": 0.01 if auroc > 0.75 else 0.5, "n_participants": n})
    return pd.DataFrame(metrics), pd.concat(predictions, ignore_index=True)


def test_verdict_compares_each_set_with_the_best_baseline_confounds_and_its_random_twin():
    metrics, predictions = _tables({"confounds": 0.0, "eeg_bandpower": 1.0, "eeg_riemann": 0.3,
                                    "ssl_eeg": 3.0, "random_eeg": 0.0})
    verdicts = prediction_verdicts(metrics, predictions, 499, 0).set_index("feature_set")
    assert (verdicts["baseline"] == "eeg_bandpower").all()  # the best classical set
    assert verdicts.loc["ssl_eeg", "beats_baseline"]
    assert verdicts.loc["ssl_eeg", "beats_random_init"]
    assert verdicts.loc["ssl_eeg", "beats_confounds"]
    assert not verdicts.loc["random_eeg", "beats_confounds"]
    assert np.isnan(verdicts.loc["eeg_bandpower", "vs_baseline_p_value"])  # itself
    assert np.isnan(verdicts.loc["eeg_bandpower", "vs_random_init_p_value"])  # not an encoder
    assert verdicts.loc["ssl_eeg", "beats_chance"] and not verdicts.loc["random_eeg",
                                                                        "beats_chance"]


def test_a_fine_tuned_encoder_is_compared_with_its_twin_trained_from_scratch():
    """``ssl_eeg_finetuned``'s twin is ``random_eeg_finetuned``, the same encoder trained
    with the target from scratch (kind ``from scratch``, not ``random init``), which is
    itself compared with the best classical baseline in plain words."""
    metrics, predictions = _tables({"confounds": 0.0, "eeg_bandpower": 1.0, "random_eeg": 0.0,
                                    "ssl_eeg_finetuned": 3.0, "random_eeg_finetuned": 0.2})
    verdicts = prediction_verdicts(metrics, predictions, 499, 0)
    kinds = verdicts.set_index("feature_set")["kind"]
    assert kinds["random_eeg_finetuned"] == "from scratch" and kinds["random_eeg"] == "random init"
    assert kinds["ssl_eeg_finetuned"] == "ssl"
    lines = prediction_sentences(verdicts)
    assert any(line.startswith("ssl_eeg_finetuned beats its twin trained from scratch (")
               for line in lines), lines
    assert any(line.startswith("random_eeg_finetuned does not beat the best classical baseline")
               for line in lines), lines


def test_without_permutations_nothing_is_claimed():
    metrics, predictions = _tables({"confounds": 0.0, "eeg_bandpower": 2.0})
    verdicts = prediction_verdicts(metrics.assign(p_value=np.nan), predictions, 0, 0)
    assert verdicts[["beats_chance", "beats_confounds"]].isna().all().all()


def test_subtypes_hold_only_past_their_null_and_free_of_nuisance():
    summary = pd.DataFrame([
        {"feature_set": "a", "method": "kmeans", "k": 2, "null_p_value": 0.01,
         "bootstrap_ari": 0.9, "age_q_value": 0.5, "mean_fd_mm_q_value": 0.6},
        {"feature_set": "b", "method": "kmeans", "k": 3, "null_p_value": 0.01,
         "bootstrap_ari": 0.9, "age_q_value": 0.5, "mean_fd_mm_q_value": 0.001},
        {"feature_set": "c", "method": "kmeans", "k": 2, "null_p_value": 0.4,
         "bootstrap_ari": 0.9, "age_q_value": 0.5, "mean_fd_mm_q_value": 0.6}])
    lines = subtype_sentences(summary, ["age", "sex", "mean_fd_mm"])
    assert lines[0].endswith("This solution holds.")
    assert "mean_fd_mm" in lines[1] and lines[1].endswith("does not hold.")
    assert "does not survive" in lines[2] and lines[2].endswith("does not hold.")


def test_window_probe_lines_say_frozen_fine_tuned_or_classical():
    table = pd.DataFrame({"modality": "eeg", "label": "task", "metric": "balanced_accuracy",
                          "encoder": ["ssl", "ssl_finetuned", "random_finetuned", "bandpower"],
                          "mean": [0.61, 0.7, 0.55, 0.64],
                          "pretraining": ["corpus", "corpus", "none", None],
                          "fraction": 1.0})
    table = pd.concat([table, table.assign(fraction=0.5, mean=0.0)])  # not on the front page
    frozen, tuned, scratch, classical = window_probe_sentences(table)
    assert frozen == "eeg ssl encoder, frozen: balanced_accuracy 0.61 for task (corpus pretraining)"
    assert tuned.startswith("eeg ssl encoder fine-tuned with task in each training split: "
                            "balanced_accuracy 0.70")
    assert scratch == ("eeg random-init encoder trained with task from scratch in each "
                       "training split: balanced_accuracy 0.55 for task")
    assert classical.startswith("eeg bandpower features (classical")


def test_first_page_renders_as_rst_without_errors():
    metrics, predictions = _tables({"confounds": 0.0, "eeg_bandpower": 1.0, "random_": 0.0})
    verdicts = prediction_verdicts(metrics, predictions, 99, 0)
    ledger = pd.DataFrame({"level": ["recording", "recording", "participant", "participant"],
                           "participant_id": ["sub-1", "sub-1", "sub-1", "sub-1"],
                           "recording": ["sub-1_task-a", "sub-1_task-b", "", ""],
                           "datatype": ["eeg", "eeg", "", ""],
                           "status": ["included", "excluded", "included", "not_scored"],
                           "stage": ["", "eeg_preprocess", "", "predict"],
                           "reason": ["", "truncated", "", "missing_label"],
                           "message": ["", "", "", "no diagnosis in participants.tsv"]})
    page = front_page("brainrep: what holds in study_", 'run on **{{ snakemake.config["name"] }}**',
                      [rst_section("Prediction", ["a *star* and a `tick` and |pipe|"],
                                   verdicts),
                       rst_section("Exclusions", exclusion_sentences(ledger),
                                   literal="name: {x}\n{# not a comment #}")])
    rendered = Environment().from_string(page).render(snakemake=type(
        "S", (), {"config": {"name": "study"}}))
    html = publish_parts(rendered, writer="html",
                         settings_overrides={"halt_level": 2, "report_level": 5})["html_body"]
    assert "study" in html and "random_" in html and "{# not a comment #}" in html
    assert "1 of 2 recordings included; 1 excluded (1 truncated at eeg_preprocess)" in html
    assert ("1 of 1 participants included; 0 excluded. 1 not scored: no diagnosis in "
            "participants.tsv.") in html


def test_colours_are_distinct_and_kept_and_intervals_stay_in_range():
    colours = [feature_set_colour(n) for n in FEATURE_SETS]
    assert len(set(colours)) == len(FEATURE_SETS)
    assert feature_set_colour("my_set") == feature_set_colour("my_set")
    error = clipped_error([0.95, 0.5], [0.8, 0.3], [1.2, 0.7], "auroc")
    assert np.allclose(error, [[0.15, 0.2], [0.05, 0.2]])
    assert METRIC_RANGE["r2"][1] == 1.0


@pytest.fixture
def fmri_run(tmp_path):
    rng = np.random.default_rng(0)
    series = pd.DataFrame(rng.normal(size=(50, 6)), columns=[f"p{i}" for i in range(6)])
    series.to_csv(tmp_path / "ts.tsv", sep="\t", index=False)
    series.corr().to_csv(tmp_path / "relmat.tsv", sep="\t")
    pd.DataFrame({"framewise_displacement": np.r_[np.nan, rng.uniform(0, 0.5, 49)]}).to_csv(
        tmp_path / "confounds.tsv", sep="\t", index=False, na_rep="n/a")
    return tmp_path


def test_participant_and_group_pages(fmri_run):
    recordings = [
        Recording("sub-01_task-rest", "func", qc={"mean_fd_mm": 0.2, "fraction_censored": 0.1},
                  timeseries=str(fmri_run / "ts.tsv"), relmat=str(fmri_run / "relmat.tsv"),
                  confounds=str(fmri_run / "confounds.tsv")),
        Recording("sub-01_task-arith", "eeg", status="excluded", reason="truncated",
                  message="x.edf: holds 45 s of the 90 s its header declares")]
    page = fmri_run / "sub-01.html"
    participant_page("sub-01", recordings, page, thresholds=QcThresholds())
    text = page.read_text()
    assert "framewise displacement" in text and "carpet plot" in text and "connectome" in text
    assert "holds 45 s of the 90 s" in text
    ledger = pd.DataFrame({"level": "recording", "participant_id": "sub-01",
                           "recording": ["sub-01_task-rest"], "datatype": "func",
                           "status": "included", "stage": "", "reason": ""})
    group = fmri_run / "group.html"
    group_page(ledger, None, pd.DataFrame([{"recording": "sub-01_task-rest",
                                             "mean_fd_mm": 0.7, "fraction_censored": 0.1}]),
               {"sub-01": "sub-01.html"}, group, thresholds=QcThresholds())
    assert 'href="sub-01.html"' in group.read_text()
    # parcellated inputs: no metric to plot against a threshold, the table still lists runs
    group_page(ledger, None, pd.DataFrame([{"recording": "sub-01_task-rest", "n_volumes": 90}]),
               {"sub-01": "sub-01.html"}, group, thresholds=QcThresholds())
    assert 'href="sub-01.html"' in group.read_text()
