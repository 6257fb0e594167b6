import numpy as np
import pandas as pd

from brainrep.multiview import MultiviewCCA, multiview_subtypes, permutation_test


def _views(link: float, n=80, p=200, seed=0):
    """Two latent subtypes move 6 of 200 brain features and both symptom scores."""
    rng = np.random.default_rng(seed)
    subtype = np.repeat([0, 1], n // 2)
    latent = np.where(subtype == 1, 1.0, -1.0) + 0.3 * rng.standard_normal(n)
    X = rng.standard_normal((n, p))
    X[:, :6] += link * latent[:, None]
    Y = rng.standard_normal((n, 2)) + link * np.c_[latent, -latent]
    return X, Y, subtype


def test_planted_brain_symptom_link_is_significant_out_of_sample():
    X, Y, _ = _views(1.0)
    held_out, p_value, null = permutation_test(X, Y, MultiviewCCA(20, 2, 0.5), 5, 50, 0)
    assert held_out[:, 0].mean() > 0.6 and p_value < 0.05 and np.median(null) < 0.3


def test_selection_inside_the_permutations_keeps_noise_insignificant():
    """Without a link, screening 20 of 200 features finds in-sample correlations that look
    strong; out of sample, with the screening refitted in every permutation, p > 0.05."""
    X, Y, _ = _views(0.0, seed=1)
    model = MultiviewCCA(20, 2, 0.0).fit(X, Y)
    brain, symptoms = model.transform(X, Y)
    assert np.corrcoef(brain[:, 0], symptoms[:, 0])[0, 1] > 0.5  # the selection's inflation
    held_out, p_value, _ = permutation_test(X, Y, MultiviewCCA(20, 2, 0.5), 5, 50, 0)
    assert p_value > 0.05 and held_out[:, 0].mean() < 0.3


def test_clusters_in_canonical_space_recover_the_subtypes():
    X, Y, subtype = _views(1.0, seed=2)
    ids = pd.Index([f"sub-{i:02d}" for i in range(len(X))], name="participant_id")
    site = pd.DataFrame({"site": np.tile(["A", "B"], len(X) // 2)}, index=ids)
    summary, scores = multiview_subtypes(pd.DataFrame(X, index=ids), pd.DataFrame(Y, index=ids),
                                         site, MultiviewCCA(20, 2, 0.5), 5, 20, range(2, 5), 10,
                                         20, 0)
    assert summary["cca_p_value"] < 0.05 and summary["r_out_of_sample_cv1"] > 0.6
    assert summary["cluster_k"] == 2 and summary["cluster_site_p_value"] > 0.05
    agreement = pd.crosstab(scores["subtype"], subtype).to_numpy()
    assert agreement.max(axis=1).sum() >= 0.9 * len(X)
