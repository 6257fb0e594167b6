import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from brainrep import subtype


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
    summary, stability, labels = subtype.find_subtypes(features, covariates, ["site"],
                                                       range(2, 5), 4, 20, 30, 0)
    assert summary["k"] == 2 and summary["bootstrap_ari"] > 0.9
    assert summary["replication_ari"] > 0.9  # held-out halves agree
    assert summary["null_p_value"] < 0.05
    assert summary["site_p_value"] > 0.05
    assert adjusted_rand_score(truth, labels["subtype"]) > 0.9
    assert list(stability["k"]) == [2, 3, 4]


def test_one_gaussian_is_not_called_clustered():
    rng = np.random.default_rng(1)
    features, covariates = _frame(rng.standard_normal((40, 6)), np.tile(["A", "B"], 20))
    summary, _, _ = subtype.find_subtypes(features, covariates, ["site"], range(2, 5), 4, 10, 30,
                                          0)
    assert summary["null_p_value"] > 0.05
    assert summary["replication_ari"] < 0.5  # noise halves do not replicate (measured 0.04-0.24)


@pytest.mark.parametrize("method", ["gmm", "agglomerative"])
def test_other_clustering_methods_find_planted_clusters_and_respect_the_null(method):
    rng = np.random.default_rng(2)
    truth = np.repeat([0, 1], 20)
    X = rng.standard_normal((40, 6))
    X[:, :3] += 6 * truth[:, None]
    features, covariates = _frame(X, np.tile(["A", "B"], 20))
    summary, _, labels = subtype.find_subtypes(features, covariates, ["site"], range(2, 5), 4,
                                               10, 30, 0, method)
    assert summary["method"] == method and summary["k"] == 2 and summary["null_p_value"] < 0.05
    assert adjusted_rand_score(truth, labels["subtype"]) > 0.9
    noise, covariates = _frame(rng.standard_normal((40, 6)), np.tile(["A", "B"], 20))
    summary, _, _ = subtype.find_subtypes(noise, covariates, ["site"], range(2, 5), 4, 10, 30,
                                          0, method)
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
