import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from brainrep import subtype


def _settings(regress_out, k_max, n_components, n_bootstrap, n_null, method="kmeans"):
    return subtype.SubtypingSettings(regress_out=regress_out, k_max=k_max,
                                     n_components=n_components, n_bootstrap=n_bootstrap,
                                     n_null=n_null, method=method)


def _frame(X, site):
    index = pd.Index([f"sub-{i:02d}" for i in range(len(X))], name="participant_id")
    return pd.DataFrame(X, index=index), pd.DataFrame({"site": site}, index=index)


def test_two_planted_clusters_are_found_despite_a_site_shift():
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1], 20)
    site = np.tile(["A", "B"], 20)
    X = rng.standard_normal((40, 6))
    X[:, :3] += 6 * truth[:, None]
    X += 3 * (site == "B")[:, None]  # a site offset on every feature
    features, covariates = _frame(X, site)
    summary, stability, labels = subtype.find_subtypes(
        features, covariates, settings=_settings(("site",), 4, 4, 20, 30), seed=0)
    assert summary["k"] == 2 and summary["bootstrap_ari"] > 0.9
    assert summary["replication_ari"] > 0.9  # held-out halves agree
    assert summary["null_p_value"] < 0.05
    assert np.isnan(summary["site_p_value"])  # regressed out: never reported as a check
    assert summary["not_tested"] == "site: regressed out before clustering"
    assert adjusted_rand_score(truth, labels["subtype"]) > 0.9
    assert list(stability["k"]) == [2, 3, 4]


def test_a_site_effect_that_clusters_pick_up_is_reported():
    rng = np.random.default_rng(3)
    site = np.repeat(["A", "B"], 15)
    X = rng.standard_normal((30, 5)) + 4 * (site == "B")[:, None]  # site is the only structure
    features, covariates = _frame(X, site)
    summary, _, _ = subtype.find_subtypes(features, covariates,
                                          settings=_settings((), 3, 3, 5, 9), seed=0)
    assert summary["site_p_value"] < 0.01 and summary["not_tested"] == "n/a"
    summary, _, _ = subtype.find_subtypes(features, covariates,
                                          settings=_settings(("site",), 3, 3, 5, 9), seed=0)
    assert np.isnan(summary["site_p_value"])
    assert summary["site_before_regression_p_value"] < 0.01  # found before the regression


def test_the_null_of_the_whole_procedure_gives_uniform_p_values():
    """50 datasets with no clusters and a site covariate regressed out: the p-value of the
    reported solution (k chosen by silhouette, regression, scaling and PCA repeated in every
    null draw) falls below 0.1 about one time in ten."""
    p_values = []
    for seed in range(50):
        rng = np.random.default_rng(100 + seed)
        site = np.tile(["A", "B", "C"], 10)
        X = rng.standard_normal((30, 4)) @ rng.standard_normal((4, 4))
        X += 3 * (site == "B")[:, None] * rng.standard_normal(4)  # a strong site effect
        _, p = subtype.gaussian_null_p(X, pd.DataFrame({"site": site}), range(2, 4), 3, 9,
                                       seed, "agglomerative")
        p_values.append(p)
    p_values = np.array(p_values)
    assert np.sum(p_values <= 0.1) <= 12 and 0.35 < p_values.mean() < 0.7


def test_association_checks_are_permutation_tests_with_fdr():
    labels = np.repeat([0, 1], 6)
    covariates = pd.DataFrame({"sex": np.repeat(["F", "M"], 6),  # follows the subtypes
                               "age": np.tile([20.0, 40.0, 30.0], 4)})  # does not
    checks = subtype.association_checks(labels, covariates, 999, 0)
    assert checks["sex_p_value"] < 0.01 and checks["age_p_value"] > 0.5
    table = pd.DataFrame([checks, {"sex_p_value": 0.04, "age_p_value": 0.03}]).assign(
        null_p_value=[0.5, 0.01])
    q = subtype.add_fdr(table, exclude=("null_p_value",))
    assert "null_q_value" not in q and (q["sex_q_value"] >= q["sex_p_value"]).all()
    assert q.loc[1, "age_q_value"] == pytest.approx(0.04 * 4 / 3, rel=1e-6)


def test_one_gaussian_is_not_called_clustered():
    rng = np.random.default_rng(1)
    features, covariates = _frame(rng.standard_normal((40, 6)), np.tile(["A", "B"], 20))
    summary, _, _ = subtype.find_subtypes(features, covariates,
                                          settings=_settings(("site",), 4, 4, 10, 30), seed=0)
    assert summary["null_p_value"] > 0.05
    assert summary["replication_ari"] < 0.5  # noise halves do not replicate (measured 0.04-0.24)


@pytest.mark.parametrize("method", ["gmm", "agglomerative"])
def test_other_clustering_methods_find_planted_clusters_and_respect_the_null(method):
    rng = np.random.default_rng(2)
    truth = np.repeat([0, 1], 20)
    X = rng.standard_normal((40, 6))
    X[:, :3] += 6 * truth[:, None]
    features, covariates = _frame(X, np.tile(["A", "B"], 20))
    summary, _, labels = subtype.find_subtypes(
        features, covariates, settings=_settings(("site",), 4, 4, 10, 30, method), seed=0)
    assert summary["method"] == method and summary["k"] == 2 and summary["null_p_value"] < 0.05
    assert adjusted_rand_score(truth, labels["subtype"]) > 0.9
    noise, covariates = _frame(rng.standard_normal((40, 6)), np.tile(["A", "B"], 20))
    summary, _, _ = subtype.find_subtypes(
        noise, covariates, settings=_settings(("site",), 4, 4, 10, 30, method), seed=0)
    assert summary["null_p_value"] > 0.05


def test_profiles_show_the_features_and_checks_that_set_subtypes_apart():
    rng = np.random.default_rng(5)
    truth = np.repeat([1, 2], 20)
    X = rng.standard_normal((40, 12))
    X[:, 7] += 3 * (truth == 2)  # only feature 7 separates the subtypes
    features, _ = _frame(X, np.tile(["A", "B"], 20))
    features.columns = [f"f{i}" for i in range(12)]
    covariates = pd.DataFrame({"severity": 10 + 5 * (truth == 2) + rng.standard_normal(40),
                               "site": np.tile(["A", "B"], 20)}, index=features.index)
    assignments = pd.DataFrame({"participant_id": features.index, "subtype": truth})
    profiles = subtype.subtype_profiles(features, covariates, assignments, n_features=3)
    table = profiles.set_index(["kind", "variable", "subtype"])["mean_z"]
    top = profiles.loc[profiles.kind == "feature", "variable"].unique()
    assert len(top) == 3 and top[0] == "f7"
    assert table["feature", "f7", 2] > 0.8 and table["feature", "f7", 1] < -0.8
    assert table["check", "severity", 2] > 0.8
    assert abs(table["check", "site=A", 1]) < 0.2  # sites balanced across subtypes
    assert set(profiles["n"]) == {20}
