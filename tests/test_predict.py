import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from brainrep import predict
from brainrep.predict.splits import stratified_subset


def _participants(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"participant_id": [f"sub-{i:02d}" for i in range(n)],
                         "diagnosis": np.repeat(["control", "patient"], n // 2),
                         "site": np.tile(["A", "B"], n // 2),
                         "age": rng.uniform(20, 60, n)})


def _features(participants, signal, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((len(participants), 10))
    X[:, 0] += signal * (participants["diagnosis"] == "patient")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
    frame.insert(0, "participant_id", participants["participant_id"])
    return frame


def _settings(**changes) -> predict.PredictionSettings:
    """Ridge, 5 outer and 3 inner folds, sites in ``site``; no permutations or intervals."""
    return predict.PredictionSettings(**{"n_permutations": 0, "n_bootstrap": 0} | changes)


def _evaluate(features, participants, n_permutations=30):
    return predict.evaluate(features, participants, "diagnosis",
                            settings=_settings(n_permutations=n_permutations, n_bootstrap=100))


def test_signal_is_found_and_noise_is_not():
    participants = _participants()
    metrics, predictions, splits = _evaluate(
        {"signal": _features(participants, 2.0), "noise": _features(participants, 0.0, 1)},
        participants)
    auroc = metrics[(metrics.metric == "auroc") & (metrics.cv_scheme == "stratified_group_kfold")]
    auroc = auroc.set_index("feature_set")
    assert auroc.loc["signal", "mean"] > 0.85 and auroc.loc["signal", "p_value"] < 0.05
    assert auroc.loc["noise", "p_value"] > 0.05
    assert auroc.loc["signal", "ci_low"] > 0.5
    assert set(metrics["cv_scheme"]) == {"stratified_group_kfold", "leave_site_out"}
    # every participant is tested exactly once per scheme
    counts = splits.groupby("cv_scheme")["participant_id"].value_counts()
    assert (counts == 1).all()
    assert len(predictions) == 2 * 2 * 40


def test_split_with_shared_participant_is_refused():
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    leaky = [(np.array([0, 2, 3]), np.array([1, 4, 5]))]
    with pytest.raises(predict.LeakageError, match="'a'"):
        predict.check_splits(leaky, groups)
    predict.check_splits([(np.array([0, 1, 2, 3]), np.array([4, 5]))], groups)


def test_window_level_split_leaks_and_is_refused():
    """Windows carry a participant fingerprint and labels carry no signal: splitting windows
    (not participants) scores far above chance, and the harness refuses that split."""
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(3)
    n_participants, per = 30, 8
    groups = np.repeat([f"sub-{i:02d}" for i in range(n_participants)], per)
    labels = np.repeat(rng.permutation(np.repeat(["control", "patient"], 15)), per)
    fingerprint = np.repeat(rng.standard_normal((n_participants, 20)), per, axis=0)
    X = fingerprint + 0.1 * rng.standard_normal(fingerprint.shape)

    target = predict.Target("diagnosis", "binary", ("control", "patient"))

    def auroc(splits):
        (score,) = predict.cross_validate(predict.fold_designs(X, splits), labels, splits,
                                          target, "ridge", 3, 0)
        return roc_auc_score(labels == "patient", score)

    by_window = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, labels))
    assert auroc(by_window) > 0.9  # leakage: the model recognises participants
    with pytest.raises(predict.LeakageError):
        predict.check_splits(by_window, groups)
    by_participant = predict.make_splits(labels, groups, None, 5, 0)["stratified_group_kfold"]
    predict.check_splits(by_participant, groups)
    assert auroc(by_participant) < 0.7


def test_permutations_stay_within_site():
    rng = np.random.default_rng(0)
    y = np.array(["p", "p", "c", "c", "p", "c", "c", "c"])
    sites = np.array(["A", "A", "A", "A", "B", "B", "B", "B"])
    for _ in range(20):
        permuted = predict.permute_within(y, sites, rng)
        for site in "AB":
            assert sorted(permuted[sites == site]) == sorted(y[sites == site])


def test_site_probe_and_confounds():
    participants = _participants()
    confounds = predict.confound_table(participants, ["age", "site"])
    assert list(confounds.columns) == ["participant_id", "age", "site_B"]
    site_coded = confounds.copy()
    probe = predict.site_probe({"confounds": site_coded}, participants, settings=_settings())
    assert probe.iloc[0]["mean"] == 1.0  # site one-hot predicts site perfectly
    with pytest.raises(KeyError, match="weight"):
        predict.confound_table(participants, ["weight"])


def test_missing_target_column_names_it():
    participants = _participants()
    with pytest.raises(KeyError, match="'severity'"):
        predict.evaluate({"x": _features(participants, 0)}, participants, "severity",
                         settings=_settings())


def test_tangent_space_is_fitted_on_training_rows_only(monkeypatch):
    from pyriemann.geometry.mean import mean_logeuclid
    from pyriemann.tangentspace import TangentSpace

    from brainrep.predict import MatrixLogarithms, TangentSpaceFeatures, models

    monkeypatch.setattr(models, "SPD_CHUNK", 7)  # matrices in several chunks

    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((30, 4, 4))
    covs = mixing @ mixing.transpose(0, 2, 1) + 0.5 * np.eye(4)
    upper = np.triu_indices(4)
    flat = covs[:, upper[0], upper[1]]
    train = np.arange(20)
    fitted = TangentSpaceFeatures().fit(flat[train])
    assert np.allclose(fitted.reference_, mean_logeuclid(covs[train]))
    assert not np.allclose(fitted.reference_, mean_logeuclid(covs))
    assert fitted.transform(flat[20:]).shape == (10, 10)  # 4 x 5 / 2 tangent coordinates
    # pyriemann's own estimator, bit for bit; the shared logarithms change nothing
    reference = TangentSpace(metric={"mean": "logeuclid", "map": "riemann"}).fit(covs[train])
    logarithms = MatrixLogarithms()
    for start in (0, 10):  # overlapping training sets: the second reuses 10 logarithms
        shared = TangentSpaceFeatures(logarithms=logarithms).fit(flat[start:start + 20])
        assert np.array_equal(shared.transform(flat),
                              TangentSpaceFeatures().fit(flat[start:start + 20]).transform(flat))
    assert np.array_equal(fitted.transform(flat), reference.transform(covs))
    assert len(logarithms) == 30
    # copy=False writes the same vectors over the rows it was given (several chunks in flight)
    overwritten = flat.copy()
    in_place = TangentSpaceFeatures(n_jobs=2, copy=False).fit(flat[train])
    assert in_place.transform(overwritten) is overwritten
    assert np.array_equal(overwritten, fitted.transform(flat))


def test_matrix_logarithms_are_kept_on_disk_and_shared_between_threads():
    """Held in a temporary file, not in memory; threads asking for overlapping matrices get
    pyriemann's logarithms, each computed and stored once."""
    import tracemalloc
    from concurrent.futures import ThreadPoolExecutor

    from pyriemann.utils.base import logm

    from brainrep.predict import MatrixLogarithms

    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((48, 40, 40))
    matrices = mixing @ mixing.transpose(0, 2, 1) + np.eye(40)  # 48 x 12.5 KiB
    logarithms = MatrixLogarithms()
    tracemalloc.start()
    with ThreadPoolExecutor(2) as pool:
        parts = list(pool.map(logarithms, [matrices[:32], matrices[16:], matrices[:32]]))
    held = tracemalloc.get_traced_memory()[0] - sum(part.nbytes for part in parts)
    tracemalloc.stop()
    assert len(logarithms) == 48 and held < matrices.nbytes / 4
    expected = logm(matrices)
    assert np.array_equal(parts[0], expected[:32]) and np.array_equal(parts[1], expected[16:])
    assert np.array_equal(parts[2], parts[0])


def _spd_features(participants, seed=4):
    """5 x 5 covariances (upper triangles, ``cov__`` columns) whose parcels 0 and 1 are
    coupled in patients."""
    rng = np.random.default_rng(seed)
    mixing = np.eye(5) + 0.3 * rng.standard_normal((len(participants), 5, 5))
    mixing[:, 0, 1] += (participants["diagnosis"] == "patient").to_numpy()
    covs = mixing @ mixing.transpose(0, 2, 1) + 0.1 * np.eye(5)
    upper = np.triu_indices(5)
    spd = pd.DataFrame(covs[:, upper[0], upper[1]],
                       columns=[f"cov__p{a}__p{b}" for a, b in zip(*upper, strict=True)])
    spd.insert(0, "participant_id", participants["participant_id"])
    return spd


def test_numbers_do_not_depend_on_n_jobs():
    """Tangent-space chunks in threads, permutation refits in processes: the same metrics,
    p-values and scores, bit for bit, with one job or two."""
    participants = _participants(40, seed=4)
    features = {"spd": _spd_features(participants, seed=4),
                "signal": _features(participants, 1.0)}
    runs = [predict.evaluate(features, participants, "diagnosis", n_jobs=n_jobs,
                             settings=_settings(n_permutations=6, deconfound=["age"]))
            for n_jobs in (1, 2)]
    for one, two in zip(*runs, strict=True):
        pd.testing.assert_frame_equal(one, two, check_exact=True)
    metrics = runs[0][0].query("metric == 'auroc' and feature_set == 'spd'")
    assert (metrics["mean"] > 0.7).all() and (metrics["n_permutations"] == 6).all()


def test_covariance_features_separate_classes_in_tangent_space():
    from brainrep.eeg import covariance_table
    from brainrep.predict import evaluate, is_spd

    rng = np.random.default_rng(1)
    n_participants, n_windows, channels = 30, 6, ["C3", "C4", "Pz"]
    labels = np.array(["patient", "control"] * (n_participants // 2))
    windows = []
    coupled = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])
    for label in labels:  # patients: C3 and C4 share a source; controls: independent
        mix = coupled if label == "patient" else np.eye(3)
        windows.append(mix @ rng.standard_normal((n_windows, 3, 200)))
    ids = [f"sub-{i:02d}" for i in range(n_participants)]
    table = pd.DataFrame({"participant_id": np.repeat(ids, n_windows)})
    features = covariance_table(np.concatenate(windows), table, channels)
    assert is_spd(features) and features.shape == (30, 1 + 6)
    participants = pd.DataFrame({"participant_id": ids, "diagnosis": labels})
    metrics, _, _ = evaluate({"eeg_riemann": features}, participants, "diagnosis",
                             settings=_settings(site_column=None))
    auroc = metrics.query("metric == 'auroc'")["mean"].item()
    assert auroc > 0.9


def test_label_efficiency_grows_with_labels_and_stays_at_chance_for_noise():
    participants = _participants(n=80)
    features = {"signal": _features(participants, 1.5), "noise": _features(participants, 0, 3)}
    curve = predict.label_efficiency(features, participants, "diagnosis", settings=_settings(
        site_column=None, label_fractions=[0.1, 0.5, 1.0], label_repeats=5)).set_index(
        ["feature_set", "fraction"])["mean"]
    assert curve["signal", 1.0] > 0.75 and curve["signal", 1.0] > curve["signal", 0.1] + 0.05
    assert all(abs(curve["noise", f] - 0.5) < 0.15 for f in (0.1, 0.5, 1.0))
    rng = np.random.default_rng(0)
    y = np.array(["a"] * 30 + ["b"] * 10)
    subset = stratified_subset(y, 0.1, rng)
    assert sorted(np.unique(y[subset], return_counts=True)[1]) == [2, 3]  # every class kept


def test_per_fold_features_are_scored_with_their_own_fold_only():
    """Features embedded by one encoder per outer fold: each fold's test participants are
    scored with that fold's rows. Rows of fold k that leak the label of fold k's test
    participants are never used for other folds, and a table whose folds do not match the
    splits is refused."""
    participants = _participants()
    folds = predict.participant_folds(participants, ["diagnosis"], 5, 0)
    assert folds["participant_id"].is_unique and sorted(folds["fold"].unique()) == [0, 1, 2, 3,
                                                                                     4]
    assert (folds.merge(participants).groupby("fold")["diagnosis"].nunique() == 2).all()
    label = (participants["diagnosis"] == "patient").to_numpy(dtype=float)
    tables = []
    for k in range(5):
        frame = _features(participants, 0.0, seed=k)
        frame["encoder_fold"] = k
        # encoder k 'knows' the labels of fold k's test participants only: honest folds use it
        tested = participants["participant_id"].isin(folds.loc[folds.fold == k,
                                                               "participant_id"])
        frame.loc[tested, "f0"] += 3 * label[tested.to_numpy()]
        tables.append(frame)
    per_fold = pd.concat(tables, ignore_index=True)
    metrics, _, splits = predict.evaluate({"per_fold": per_fold}, participants, "diagnosis",
                                          settings=_settings(), folds=folds)
    # training rows of every fold carry no signal, so the planted test-only signal cannot be
    # learnt: AUROC stays near chance
    auroc = metrics[metrics.metric == "auroc"].set_index("cv_scheme")["mean"]
    assert list(auroc.index) == ["stratified_group_kfold"]  # leave-site-out skips it
    assert auroc.iloc[0] < 0.75
    scored = splits[splits.cv_scheme == "stratified_group_kfold"].set_index("participant_id")
    scored = scored["fold"]
    assert (scored == folds.set_index("participant_id").loc[scored.index, "fold"]).all()
    with pytest.raises(predict.LeakageError, match="pretraining folds"):
        predict.evaluate({"per_fold": per_fold[per_fold.encoder_fold < 4]}, participants,
                         "diagnosis", settings=_settings(), folds=folds)


def _auroc(metrics, scheme="stratified_group_kfold"):
    rows = metrics[(metrics.metric == "auroc") & (metrics.cv_scheme == scheme)]
    return rows.set_index("feature_set")["mean"]


def test_confounds_regressed_out_inside_folds_expose_a_confounded_feature():
    """Patients are older; one feature only tracks age, another carries diagnosis beyond age.
    Regressing age out inside each training fold removes the first and keeps the second."""
    rng = np.random.default_rng(3)
    participants = _participants(60, seed=3)
    patient = (participants["diagnosis"] == "patient").to_numpy()
    participants["age"] = 40 + 6 * patient + 6 * rng.standard_normal(60)
    age_only = _features(participants, 0.0, seed=4)
    age_only["f0"] = participants["age"] + 2 * rng.standard_normal(60)
    real = _features(participants, 2.0, seed=5)
    features = {"age_only": age_only, "real": real}
    plain, _, _ = predict.evaluate(features, participants, "diagnosis", settings=_settings())
    cleaned, _, _ = predict.evaluate(features, participants, "diagnosis",
                                     settings=_settings(deconfound=["age"]))
    # measured: age_only 0.68 -> 0.47, real 0.84 -> 0.78
    assert _auroc(plain)["age_only"] > 0.6
    assert _auroc(cleaned)["age_only"] < min(0.6, _auroc(plain)["age_only"] - 0.15)
    assert _auroc(cleaned)["real"] > 0.7
    assert set(cleaned["deconfound"]) == {"age"}


def test_combat_inside_folds_removes_a_site_effect_that_mimics_diagnosis():
    """Site A holds most patients and shifts every feature: without harmonization the site
    passes for diagnosis; ComBat fitted on each training fold removes it, a real effect stays."""
    rng = np.random.default_rng(6)
    n = 80
    site = np.repeat(["A", "B"], n // 2)
    patient = np.where(site == "A", rng.random(n) < 0.8, rng.random(n) < 0.2)
    participants = pd.DataFrame({"participant_id": [f"sub-{i:02d}" for i in range(n)],
                                 "diagnosis": np.where(patient, "patient", "control"),
                                 "site": site, "age": rng.uniform(20, 60, n)})
    site_only = _features(participants, 0.0, seed=7)
    site_only.iloc[:, 1:] += 1.5 * (site == "A")[:, None]
    real = _features(participants, 2.0, seed=8)
    features = {"site_only": site_only, "real": real}
    plain, _, _ = predict.evaluate(features, participants, "diagnosis", settings=_settings())
    harmonized, _, _ = predict.evaluate(features, participants, "diagnosis",
                                        settings=_settings(combat=True))
    assert _auroc(plain)["site_only"] > 0.7
    assert _auroc(harmonized)["site_only"] < 0.65 and _auroc(harmonized)["real"] > 0.75
    assert harmonized.set_index("cv_scheme")["combat"].groupby(level=0).first().to_dict() == {
        "stratified_group_kfold": True, "leave_site_out": False}


def test_linear_svm_is_tuned_inside_folds_and_finds_the_signal():
    participants = _participants()
    metrics, _, _ = predict.evaluate({"signal": _features(participants, 2.0)}, participants,
                                     "diagnosis", settings=_settings(model="linear_svm"))
    assert _auroc(metrics)["signal"] > 0.85


def test_target_kind_is_read_from_the_column():
    participants = _participants()
    participants["severity"] = np.linspace(0, 30, 40)
    participants["stage"] = np.tile([1.0, 2.0, 3.0, np.nan], 10)
    assert predict.resolve_target(participants, "severity").task == "continuous"
    stage = predict.resolve_target(participants, "stage")
    assert (stage.task, stage.classes) == ("multiclass", ("1", "2", "3"))
    sex = participants.assign(sex=np.tile(["F", "M"], 20))
    with pytest.raises(ValueError, match=r"positive_class: \{sex: M\}"):
        predict.resolve_target(sex, "sex", "patient")
    target = predict.resolve_target(sex, "sex", {"diagnosis": "patient", "sex": "F"})
    assert target.classes == ("M", "F") and target.positive == "F"


def test_multiclass_target_is_predicted_and_its_null_is_not():
    rng = np.random.default_rng(11)
    participants = _participants(60, seed=11)
    participants["stage"] = np.tile(["mild", "moderate", "severe"], 20)
    X = rng.standard_normal((60, 8))
    code = pd.factorize(participants["stage"], sort=True)[0]
    X[np.arange(60), code] += 2.5  # each stage raises its own feature
    signal = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    signal.insert(0, "participant_id", participants["participant_id"])
    features = {"signal": signal, "noise": _features(participants, 0.0, 12)}
    metrics, predictions, _ = predict.evaluate(features, participants, "stage", settings=_settings(
        positive_class=None, n_permutations=30, n_bootstrap=50))
    rows = metrics[metrics.cv_scheme == "stratified_group_kfold"].set_index(
        ["feature_set", "metric"])
    assert set(metrics["task"]) == {"multiclass"}
    assert rows.loc[("signal", "balanced_accuracy"), "mean"] > 0.7  # chance 1/3
    assert rows.loc[("signal", "balanced_accuracy"), "p_value"] < 0.05
    assert rows.loc[("signal", "auroc"), "mean"] > 0.85
    assert rows.loc[("noise", "balanced_accuracy"), "p_value"] > 0.05
    assert rows.loc[("signal", "balanced_accuracy"), "chance"] == pytest.approx(1 / 3)
    assert {"score_mild", "score_moderate", "score_severe"} <= set(predictions.columns)


def test_continuous_target_reports_r2_and_mae_against_chance():
    rng = np.random.default_rng(13)
    participants = _participants(60, seed=13)
    features = {"signal": _features(participants, 0.0, 14), "noise": _features(participants, 0, 15)}
    participants["severity"] = 10 + 3 * features["signal"]["f1"] + rng.standard_normal(60)
    metrics, predictions, splits = predict.evaluate(
        features, participants, "severity", settings=_settings(n_permutations=30, n_bootstrap=50))
    rows = metrics[metrics.cv_scheme == "stratified_group_kfold"].set_index(
        ["feature_set", "metric"])
    assert set(metrics["metric"]) == {"r2", "mae", "pearson_r"}
    assert rows.loc[("signal", "r2"), "mean"] > 0.7 and rows.loc[("signal", "r2"), "p_value"] < 0.05
    assert rows.loc[("signal", "mae"), "mean"] < 0.5 * rows.loc[("signal", "mae"), "chance"]
    assert rows.loc[("noise", "r2"), "mean"] < 0.1 and rows.loc[("noise", "r2"), "p_value"] > 0.05
    assert (splits.groupby("cv_scheme")["participant_id"].value_counts() == 1).all()
    assert np.isfinite(predictions["y_pred"].astype(float)).all()


def test_leave_site_out_has_its_own_permutation_p_value():
    participants = _participants()
    metrics, _, _ = _evaluate({"signal": _features(participants, 2.0),
                               "noise": _features(participants, 0.0, 1)}, participants)
    held_out = metrics[(metrics.cv_scheme == "leave_site_out") & (metrics.metric == "auroc")]
    held_out = held_out.set_index("feature_set")
    assert (held_out["n_permutations"] == 30).all()
    assert held_out.loc["signal", "p_value"] < 0.05 and held_out.loc["noise", "p_value"] > 0.05


def test_site_probe_sees_the_features_after_combat():
    """A feature set that only encodes site is a perfect site probe; ComBat fitted inside the
    training folds brings it to chance."""
    participants = _participants(60, seed=16)
    site_only = _features(participants, 0.0, 17)
    site_only.iloc[:, 1:] += 2.0 * (participants["site"] == "A").to_numpy()[:, None]
    site_only.iloc[:, 1:] *= 1 + (participants["site"] == "A").to_numpy()[:, None]
    features = {"site_only": site_only}
    plain = predict.site_probe(features, participants, settings=_settings())
    harmonized = predict.site_probe(features, participants, settings=_settings(combat=True))
    assert plain["mean"].item() > 0.95
    assert harmonized["mean"].item() < 0.7 and bool(harmonized["combat"].item())


def test_label_efficiency_removes_confounds_inside_the_labelled_subset():
    rng = np.random.default_rng(18)
    participants = _participants(80, seed=18)
    patient = (participants["diagnosis"] == "patient").to_numpy()
    participants["age"] = 40 + 8 * patient + 4 * rng.standard_normal(80)
    age_only = _features(participants, 0.0, seed=19)
    age_only["f0"] = participants["age"] + rng.standard_normal(80)
    arguments = ({"age_only": age_only}, participants, "diagnosis")
    curve = {"label_fractions": [0.5, 1.0], "label_repeats": 2}
    plain = predict.label_efficiency(*arguments, settings=_settings(site_column=None, **curve))
    cleaned = predict.label_efficiency(*arguments, settings=_settings(deconfound=["age"],
                                                                     **curve))
    plain, cleaned = (c.set_index("fraction")["mean"] for c in (plain, cleaned))
    assert plain[1.0] > 0.8 and cleaned[1.0] < 0.65


def test_combat_in_the_label_efficiency_curve_keeps_every_site_in_small_subsets():
    """At 10 % of labels a subset stratified on diagnosis alone can leave a site with one
    participant, which ComBat cannot fit; subsets are stratified within site instead."""
    participants = _participants(80, seed=20)
    curve = predict.label_efficiency({"signal": _features(participants, 2.0, 21)},
                                     participants, "diagnosis", settings=_settings(
                                         label_fractions=[0.1, 1.0], label_repeats=2,
                                         combat=True))
    assert curve["n_train_labelled"].iloc[0] == 8  # 2 per diagnosis x site cell
    assert curve.set_index("fraction").loc[1.0, "mean"] > 0.8
    lonely = np.hstack([np.zeros((5, 2)), np.array([[0], [0], [0], [0], [1]])])
    with pytest.raises(ValueError, match="site1 has 1"):
        predict.NuisanceRemoval(1, combat=True, deconfound=False).fit(lonely)


def test_every_interval_contains_its_estimate():
    """The interval and its estimate are one statistic (pooled out-of-fold metric and its
    participant bootstrap); the fold mean keeps its own spread (sd)."""
    participants = _participants()
    participants["severity"] = np.random.default_rng(3).normal(10, 2, len(participants))
    features = {"signal": _features(participants, 2.0), "noise": _features(participants, 0, 1)}
    for target in ("diagnosis", "severity"):
        metrics, predictions, _ = predict.evaluate(features, participants, target,
                                                   settings=_settings(n_bootstrap=200))
        rows = metrics.dropna(subset=["ci_low"])
        assert len(rows) == len(metrics)
        assert ((rows.ci_low <= rows.estimate + 1e-12)
                & (rows.estimate <= rows.ci_high + 1e-12)).all()
    pooled = predictions[(predictions.cv_scheme == "stratified_group_kfold")
                         & (predictions.feature_set == "signal")]
    signal = metrics.set_index(["cv_scheme", "feature_set", "metric"])
    # the estimate is the pooled R² of the out-of-fold predictions, not a fold average
    from sklearn.metrics import r2_score

    assert signal.loc[("stratified_group_kfold", "signal", "r2"), "estimate"] == pytest.approx(
        r2_score(pooled.y_true.astype(float), pooled.y_pred.astype(float)))


def test_chance_comes_from_a_predictor_fitted_in_the_training_folds():
    participants = _participants(40)
    y = np.random.default_rng(4).normal(0, 1, 40)
    participants["severity"] = y
    target = predict.resolve_target(participants, "severity")
    splits = [(np.arange(10, 40), np.arange(10)), (np.arange(30), np.arange(30, 40))]
    r2 = target.chance("r2", y, splits)
    expected = np.mean([1 - np.sum((y[te] - y[tr].mean()) ** 2)
                        / np.sum((y[te] - y[te].mean()) ** 2) for tr, te in splits])
    assert r2 == pytest.approx(expected) and r2 < 0  # a mean predictor scores below 0 in CV
    assert target.chance("mae", y, splits) == pytest.approx(
        np.mean([np.mean(np.abs(y[te] - np.median(y[tr]))) for tr, te in splits]))
    binary = predict.resolve_target(participants, "diagnosis", "patient")
    labels = participants["diagnosis"].to_numpy()
    unbalanced = [(np.arange(15, 40), np.arange(15)), (np.arange(25), np.arange(25, 40))]
    assert binary.chance("auc_pr", labels, unbalanced) == pytest.approx((0 + 15 / 15) / 2)


def test_every_target_is_scored_on_all_participants_that_have_it():
    participants = _participants(40)
    participants.loc[:7, "diagnosis"] = np.nan  # 8 participants without the first target
    participants["severity"] = np.random.default_rng(5).normal(10, 2, 40)
    folds = predict.participant_folds(participants, ["diagnosis", "severity"], 4, 0)
    assert len(folds) == 40 and folds["participant_id"].is_unique
    assert folds["fold"].value_counts().max() - folds["fold"].value_counts().min() <= 2
    metrics, _, splits = predict.evaluate({"signal": _features(participants, 0.0)},
                                          participants, "severity",
                                          settings=_settings(positive_class=None, outer_folds=4),
                                          folds=folds)
    scored = splits[splits.cv_scheme == "stratified_group_kfold"]["participant_id"]
    assert set(scored) == set(participants["participant_id"])  # the unlabelled 8 included


def test_missing_values_are_imputed_from_the_training_rows_only():
    """Edges of a parcel some runs lack are NaN; each fold imputes them with its training
    rows' means, so a test participant's own values never fill its gaps."""
    X = np.array([[1.0], [np.nan], [3.0], [100.0]])
    splits = [(np.array([0, 2]), np.array([1, 3]))]
    ((train, test),) = list(predict.fold_designs(X, splits))
    assert train.ravel().tolist() == [1.0, 3.0] and test.ravel().tolist() == [2.0, 100.0]



def test_a_wide_parquet_table_reads_as_written_in_column_chunks(tmp_path, monkeypatch):
    """Decoded a few columns at a time, a table of mixed columns (labels, integers, floats
    with NaN) equals pandas' whole read; one with a stored index is read whole."""
    import brainrep.io

    monkeypatch.setattr(brainrep.io, "PARQUET_COLUMNS_PER_READ", 3)
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.standard_normal((5, 7)), columns=[f"edge_{i}" for i in range(7)])
    table.insert(0, "participant_id", [f"sub-{i}" for i in range(5)])
    table["count"], table.loc[2, "edge_3"] = np.arange(5), np.nan
    table.to_parquet(tmp_path / "wide.parquet", index=False)
    pd.testing.assert_frame_equal(brainrep.io.read_table(tmp_path / "wide.parquet"), table)
    table.set_index("participant_id").to_parquet(tmp_path / "indexed.parquet")
    pd.testing.assert_frame_equal(brainrep.io.read_table(tmp_path / "indexed.parquet"),
                                  table.set_index("participant_id"))
    # features only: one float64 block, of which the harness's design matrix is a view
    floats = table.drop(columns="count")
    floats.to_parquet(tmp_path / "floats.parquet", index=False)
    read = brainrep.io.read_features(tmp_path / "floats.parquet")
    pd.testing.assert_frame_equal(read, floats, check_exact=True)
    from brainrep.predict.crossval import design

    ids = floats["participant_id"].tolist()
    X = design(read, ids)
    assert np.shares_memory(X, design(read, ids)) and np.isnan(X[2, 3])  # views, no copy
    assert brainrep.io._read_float_parquet(tmp_path / "wide.parquet") is None  # integers
    floats.iloc[2:].to_parquet(tmp_path / "stored_index.parquet")  # index 2..4 kept
    assert brainrep.io._read_float_parquet(tmp_path / "stored_index.parquet") is None
    pd.testing.assert_frame_equal(brainrep.io.read_features(tmp_path / "stored_index.parquet"),
                                  floats.iloc[2:], check_exact=True)
    pd.testing.assert_frame_equal(brainrep.io.read_features(tmp_path / "wide.parquet"),
                                  table, check_exact=True)


def test_a_tsv_feature_table_reads_in_row_chunks_as_read_whole(tmp_path, monkeypatch):
    """Floats with gaps are parsed a few rows at a time into the values of a whole read;
    tables with integer or text columns (also below the first chunk) are read whole, and
    every table keeps participant_id and its numeric columns in file order."""
    import brainrep.io

    monkeypatch.setattr(brainrep.io, "TSV_ROWS_PER_READ", 3)
    rng = np.random.default_rng(0)
    edges = pd.DataFrame(rng.standard_normal((8, 4)), columns=[f"a__b{i}" for i in range(4)])
    edges.insert(0, "participant_id", [f"sub-{i}" for i in range(8)])
    edges.loc[[1, 6], "a__b2"] = np.nan
    late_text = edges.astype({"a__b1": object})
    late_text.loc[6, "a__b1"] = "bad"  # a float column turns to text in the third chunk
    with_folds = edges.assign(encoder_fold=np.arange(8) % 2)
    for name, table in [("edges", edges), ("late_text", late_text),
                        ("folds", with_folds)]:
        table.to_csv(tmp_path / f"{name}.tsv", sep="\t", index=False, na_rep="n/a")
        whole = brainrep.io.read_table(tmp_path / f"{name}.tsv")
        expected = whole[["participant_id",
                          *whole.drop(columns="participant_id").select_dtypes("number")]]
        read = brainrep.io.read_features(tmp_path / f"{name}.tsv")
        pd.testing.assert_frame_equal(read, expected, check_exact=True)
        assert brainrep.io.feature_participants(tmp_path / f"{name}.tsv") == list(
            edges["participant_id"])
    assert [brainrep.io._read_float_tsv(tmp_path / f"{name}.tsv") is None
            for name in ("edges", "late_text", "folds")] == [False, True, True]
    assert np.isnan(read.loc[6, "a__b2"]) and read["encoder_fold"].dtype == np.int64
    assert "a__b1" not in brainrep.io.read_features(tmp_path / "late_text.tsv")


def test_memory_request_follows_the_largest_feature_table(tmp_path):
    """table_shape reads a TSV's and a Parquet table's shape as pandas does (gaps, no final
    newline); memory_mb grows with the largest table only, counts workers only with
    permutations, and counts a table not yet written as empty."""
    from brainrep.io import read_table, table_shape

    rng = np.random.default_rng(0)
    small = pd.DataFrame(rng.standard_normal((30, 4)), columns=list("abcd"))
    small.insert(0, "participant_id", [f"sub-{i}" for i in range(30)])
    small.loc[3, "b"] = np.nan
    wide = pd.DataFrame(rng.standard_normal((300, 2000)))
    wide.columns = [f"e{i}" for i in range(2000)]
    wide.insert(0, "participant_id", [f"sub-{i}" for i in range(300)])
    small.to_csv(tmp_path / "small.tsv", sep="\t", index=False, na_rep="n/a")
    (tmp_path / "unterminated.tsv").write_bytes((tmp_path / "small.tsv").read_bytes()[:-1])
    wide.to_parquet(tmp_path / "wide.parquet", index=False)
    wide.to_csv(tmp_path / "wide.tsv", sep="\t", index=False)
    for name in ("small.tsv", "unterminated.tsv", "wide.parquet", "wide.tsv"):
        assert table_shape(tmp_path / name) == read_table(tmp_path / name).shape, name
    small_tsv, wide_tsv = tmp_path / "small.tsv", tmp_path / "wide.tsv"
    empty = predict.memory_mb([])
    assert predict.memory_mb([tmp_path / "not_yet.parquet"]) == empty
    wide.iloc[:150].to_csv(tmp_path / "half.tsv", sep="\t", index=False)
    assert empty < predict.memory_mb([tmp_path / "half.tsv"]) < predict.memory_mb([wide_tsv])
    assert predict.memory_mb([small_tsv, wide_tsv]) == predict.memory_mb([wide_tsv])
    assert predict.memory_mb([wide_tsv]) == predict.memory_mb([tmp_path / "wide.parquet"])
    # a narrow table stacked per outer fold (3,000 rows) builds no 3,000 x 3,000 matrix
    tall = pd.DataFrame(rng.standard_normal((3000, 8)), columns=[f"z{i}" for i in range(8)])
    tall.insert(0, "participant_id", [f"sub-{i % 600}" for i in range(3000)])
    tall["encoder_fold"] = np.repeat(np.arange(5), 600)
    tall.to_parquet(tmp_path / "tall.parquet", index=False)
    assert predict.memory_mb([wide_tsv, tmp_path / "tall.parquet"]) == predict.memory_mb(
        [wide_tsv])
    (tmp_path / "cut.parquet").write_bytes((tmp_path / "wide.parquet").read_bytes()[:1000])
    assert predict.memory_mb([tmp_path / "cut.parquet"]) == empty  # a job killed mid-write
    # the 150 rows added (2.29 MiB: 150 x 2,001 x 8 bytes) are held TABLE_COPIES (2.0) times,
    # the request 1.25 times the peak, in MB: 6.0 MB, and the square term's 2.7 (four
    # 300 x 300 matrices instead of 150 x 150)
    grown = (predict.memory_mb([wide_tsv], permutations=False)
             - predict.memory_mb([tmp_path / "half.tsv"], permutations=False))
    assert 8 <= grown <= 10
    # confounds regressed out, ComBat, or a model tuned by inner folds ask for more
    plain = predict.memory_mb([wide_tsv], permutations=False)
    assert plain < predict.memory_mb([wide_tsv], permutations=False, nuisance=True)
    assert plain < predict.memory_mb([wide_tsv], permutations=False, model="linear_svm")
    alone = predict.memory_mb([wide_tsv], n_jobs=4, permutations=False)
    assert alone == predict.memory_mb([wide_tsv], n_jobs=1, permutations=False)
    assert alone < predict.memory_mb([wide_tsv], n_jobs=1) < predict.memory_mb([wide_tsv],
                                                                                 n_jobs=4)


def test_wide_tables_are_written_byte_for_byte_as_pandas_writes_them(tmp_path):
    """write_tsv's fast path (text labels, float64 values) and its fallbacks (quoted text,
    float32, integers) give pandas' bytes: shortest round-trip digits, -0.0, tiny and huge
    values, infinities and gaps written as na_rep."""
    from brainrep.io import write_tsv

    rng = np.random.default_rng(0)
    values = rng.standard_normal((30, 30)) * np.logspace(-9, 18, 30)
    values[:, 6] = rng.uniform(-1e-4, 1e-4, 30)  # where orjson and repr write differently
    values[[0, 1, 2, 3], [0, 1, 2, 3]] = [-0.0, np.nan, np.inf, 1.0]
    labels = [f"p{i}" for i in range(30)]
    matrix = pd.DataFrame(values, index=labels, columns=labels)
    edges = pd.DataFrame(values, columns=labels)
    edges.insert(0, "participant_id", [f"sub-{i}" for i in range(30)])
    quoted = edges.assign(participant_id=edges["participant_id"].replace("sub-3", 'a"b'))
    cases = [(matrix, {"index": True}), (matrix.rename_axis("parcel"), {"index": True}),
             (edges, {"na_rep": "n/a"}), (edges, {}), (quoted, {}),
             (edges.astype({"p4": "float32"}), {}), (edges.assign(p5=1), {}),
             (edges, {"na_rep": 'a"b'}), (edges[["p1"]], {}), (matrix.iloc[:, :0], {"index": True}),
             (edges[["participant_id"]].assign(site="a"), {})]
    correlations = pd.DataFrame(np.tanh(rng.standard_normal((30, 30))), index=labels,
                                columns=labels)  # every value written by orjson alone
    correlations = correlations.where(correlations.abs() >= 1e-4, 0.5)
    cases.append((correlations, {"index": True}))
    for number, (frame, options) in enumerate(cases):
        write_tsv(frame, tmp_path / f"{number}.tsv", **options)
        frame.to_csv(tmp_path / f"{number}_pandas.tsv", sep="\t",
                     **{"index": False} | options)
        assert (tmp_path / f"{number}.tsv").read_bytes() == (
            tmp_path / f"{number}_pandas.tsv").read_bytes(), number


def test_floats_are_formatted_as_repr_formats_them_at_every_magnitude():
    """shortest_floats gives repr's text for float64 values from subnormal to the largest,
    both signs, zero, whole numbers and the decades where notations switch."""
    from brainrep.io import shortest_floats

    rng = np.random.default_rng(0)
    with np.errstate(over="ignore"):
        values = np.concatenate([
            rng.standard_normal(100_000) * 10.0 ** rng.integers(-325, 309, 100_000),
            rng.standard_normal(100_000) * 10.0 ** rng.integers(-7, 18, 100_000),
            rng.integers(-10**17, 10**17, 1000).astype(float),
            [0.0, -0.0, 5e-324, 1e-5, -1e-5, 1e-4, 9.999999999999999e-05, 1e15, 1e16, 1e22,
             np.finfo(float).max]])
    values = values[np.isfinite(values)]
    written = shortest_floats(values).split("\t")
    expected = [repr(v) for v in values.tolist()]
    assert len(written) == len(expected)
    differ = [(w, e) for w, e in zip(written, expected, strict=True) if w != e]
    assert not differ, differ[:5]
    assert shortest_floats(values[::-3]) == "\t".join(expected[::-3])  # not contiguous
    plain = values[(np.abs(values) >= 1e-4) & (np.abs(values) < 1e16)]  # orjson's text alone
    assert shortest_floats(plain) == "\t".join(map(repr, plain.tolist()))
    with pytest.raises(ValueError, match="one row"):
        shortest_floats(values[:4].reshape(2, 2))


def test_a_table_on_disk_gives_the_designs_of_the_table_in_memory():
    """TableOnDisk's rows, read a fold at a time, make the same fold designs as the table in
    memory: participants in another order, a missing edge imputed, a nuisance block."""
    from brainrep.predict.crossval import Sample
    from brainrep.predict.ondisk import TableOnDisk

    participants = _participants()
    frame = _features(participants, 1.0).sample(frac=1.0, random_state=0)  # shuffled rows
    frame.iloc[4, 3] = np.nan
    y = (participants["diagnosis"] == "patient").to_numpy()
    splits = [(np.arange(8, 40), np.arange(8)), (np.arange(32), np.arange(32, 40))]
    nuisance = participants.set_index("participant_id")[["age"]]
    with TableOnDisk(frame) as on_disk, TableOnDisk(frame.iloc[1:]) as fewer:
        for block in (None, nuisance):
            data = Sample(None, participants["participant_id"].tolist(), y, None, block)
            for ours, theirs in zip(data.designs(on_disk, splits),
                                    data.designs(frame, splits), strict=True):
                for a, b in zip(ours, theirs, strict=True):
                    assert np.array_equal(a, b) and a.flags.c_contiguous == b.flags.c_contiguous
                assert not np.isnan(ours[0]).any()  # imputed
        with pytest.raises(KeyError, match="not in the table"):
            data.designs(fewer, splits)
    with pytest.raises(ValueError, match="stays in memory"):
        TableOnDisk(frame.assign(encoder_fold=0))


def test_prediction_stage_reads_each_table_once_with_the_numbers_of_one_call(tmp_path,
                                                                              monkeypatch):
    """predict_target holds one feature table at a time, scores every table on the
    participants all tables have, and returns the tables of evaluate, site_probe and
    label_efficiency called once with every feature set in memory, row for row."""
    import brainrep.io
    from brainrep.predict import stage

    participants = _participants()
    folds = predict.participant_folds(participants, ["diagnosis"], 5, 0)
    per_fold = pd.concat([_features(participants, 1.0, seed=k).assign(encoder_fold=k)
                          for k in range(5)], ignore_index=True)  # scored in its folds only
    features = {"per_fold": per_fold, "signal": _features(participants, 2.0),
                "noise": _features(participants, 0.0, 1).iloc[3:],  # 3 participants fewer
                "covariances": _spd_features(participants)}
    paths = {}
    for name, frame in features.items():
        paths[name] = tmp_path / f"{name}.{'parquet' if name == 'noise' else 'tsv'}"
        (frame.to_parquet(paths[name], index=False) if name == "noise" else
         frame.to_csv(paths[name], sep="\t", index=False))
    reads = []
    monkeypatch.setattr(stage, "read_features",
                        lambda path: reads.append(path) or brainrep.io.read_features(path))
    settings = _settings(n_permutations=5, n_bootstrap=20, label_fractions=(0.5, 1.0),
                         label_repeats=2)
    from brainrep.predict import curves

    refits = []  # label efficiency's: fraction 1 takes evaluate's scores, not a refit
    monkeypatch.setattr(curves, "cross_validate", lambda designs, y, splits, *args, **kwargs:
                        refits.append(sum(map(len, (train for train, _ in splits))))
                        or predict.cross_validate(designs, y, splits, *args, **kwargs))
    got = predict.predict_target(paths, participants, "diagnosis", settings=settings,
                                 folds=folds)
    assert reads == list(paths.values())
    # per table: the site probe (every participant of the table, each in 4 training folds),
    # then the two subsets at 0.5; no refit on the 4 x 37 training rows of fraction 1
    assert len(refits) == 3 * len(paths)
    assert refits[0::3] == [4 * 40, 4 * 40, 4 * 37, 4 * 40]
    assert all(rows < 4 * 37 for rows in refits[1::3] + refits[2::3])
    monkeypatch.undo()
    metrics, predictions, splits = predict.evaluate(features, participants, "diagnosis",
                                                    settings=settings, folds=folds)
    for table, expected in [(got.metrics, metrics), (got.predictions, predictions),
                            (got.splits, splits),
                            (got.site_probe, predict.site_probe(
                                features, participants, settings=settings, folds=folds)),
                            (got.label_efficiency, predict.label_efficiency(
                                features, participants, "diagnosis", settings=settings,
                                folds=folds))]:
        pd.testing.assert_frame_equal(table, expected, check_exact=True)
    assert got.metrics["n_participants"].eq(37).all()
    assert list(got.metrics.drop_duplicates(["cv_scheme", "feature_set"])["feature_set"]) == [
        "per_fold", "signal", "noise", "covariances", "signal", "noise", "covariances"]


def test_a_fine_tuned_table_is_on_the_curve_at_all_labels_only(tmp_path):
    """An encoder fine-tuned with every training label cannot stand for fewer labels: its
    table gets the curve's fraction-1 row only, the same as without the flag, and every other
    table keeps each fraction."""
    participants = _participants()
    folds = predict.participant_folds(participants, ["diagnosis"], 5, 0)
    tuned = pd.concat([_features(participants, 1.0, seed=k).assign(encoder_fold=k)
                       for k in range(5)], ignore_index=True)
    paths = {"tuned": tmp_path / "tuned.parquet", "signal": tmp_path / "signal.parquet"}
    tuned.to_parquet(paths["tuned"], index=False)
    _features(participants, 2.0).to_parquet(paths["signal"], index=False)
    settings = _settings(label_fractions=(0.5, 1.0), label_repeats=2)
    plain, flagged = (predict.predict_target(paths, participants, "diagnosis",
                                             settings=settings, folds=folds, finetuned=names)
                      for names in ((), ("tuned",)))
    curve = flagged.label_efficiency.set_index(["feature_set", "fraction"])
    assert sorted(curve.index) == [("signal", 0.5), ("signal", 1.0), ("tuned", 1.0)]
    expected = plain.label_efficiency.set_index(["feature_set", "fraction"]).loc[curve.index]
    pd.testing.assert_frame_equal(curve, expected, check_exact=True)
    pd.testing.assert_frame_equal(flagged.metrics, plain.metrics, check_exact=True)


@pytest.mark.parametrize("task", ["binary", "multiclass", "continuous"])
def test_scaled_ridge_gives_the_scikit_learn_pipeline_numbers_from_one_copy(task, monkeypatch):
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from brainrep.predict import ridge
    from brainrep.predict.models import RIDGE_ALPHAS

    monkeypatch.setattr(ridge, "COLUMN_BLOCK_VALUES", 48 * 70)  # several column blocks
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 400)) * rng.uniform(0.5, 5, 400) + rng.normal(size=400)
    labels = {"binary": rng.choice(["ASD", "TD"], 60, p=[0.3, 0.7]),
              "multiclass": rng.choice(["a", "b", "c"], 60),
              "continuous": X[:, 0] + rng.normal(size=60)}[task]
    X[:, 1] += 2.0 * (labels == labels[0])  # a signal the fit must find
    train, test = np.arange(48), np.arange(48, 60)
    classifier = task != "continuous"
    reference = make_pipeline(StandardScaler(), RidgeClassifierCV(
        alphas=RIDGE_ALPHAS, class_weight="balanced") if classifier else RidgeCV(
        alphas=RIDGE_ALPHAS)).fit(X[train], labels[train])
    expected = (reference.decision_function if classifier else reference.predict)(X[test])
    for copy_X in (True, False):
        design = X[train].copy()
        fitted = ridge.ScaledRidgeCV(RIDGE_ALPHAS, classifier=classifier,
                                     copy_X=copy_X).fit(design, labels[train])
        np.testing.assert_array_equal(fitted.decision_function(X[test]), expected)
        assert fitted.alpha_ == reference[-1].alpha_
        np.testing.assert_array_equal(fitted.predict(X[test]), reference.predict(X[test]))
        # copy_X=False standardizes the design in place; the default leaves it as it was
        assert np.array_equal(design, X[train]) is copy_X
    # a tall design (fewer features than rows) is fitted by the pipeline itself
    tall = ridge.ScaledRidgeCV(RIDGE_ALPHAS, classifier=classifier).fit(X[train, :5],
                                                                         labels[train])
    small = make_pipeline(StandardScaler(), RidgeClassifierCV(
        alphas=RIDGE_ALPHAS, class_weight="balanced") if classifier else RidgeCV(
        alphas=RIDGE_ALPHAS)).fit(X[train, :5], labels[train])
    np.testing.assert_array_equal(tall.predict(X[test, :5]), small.predict(X[test, :5]))
