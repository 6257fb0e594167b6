import numpy as np
import pandas as pd

from brainrep.subtype.multiview import MultiviewCCA, multiview_subtypes, permutation_test
from brainrep.subtype.settings import MultiviewSettings, SubtypingSettings


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


def _frames(X, Y):
    ids = pd.Index([f"sub-{i:02d}" for i in range(len(X))], name="participant_id")
    site = pd.Series(np.tile(["A", "B"], len(X) // 2), index=ids, name="site")
    return (pd.DataFrame(X, index=ids),
            pd.DataFrame(Y, index=ids, columns=["anhedonia", "anxiety"]), site)


def test_clusters_in_canonical_space_recover_the_subtypes():
    X, Y, subtype = _views(1.0, seed=2)
    features, symptoms, site = _frames(X, Y)
    covariates = symptoms.join(site)
    # one canonical dimension carries the subtypes (a second, of noise, would be scaled to the
    # same variance before clustering)
    summary, scores = multiview_subtypes(
        features, symptoms, covariates,
        settings=MultiviewSettings(n_features=20, n_components=1, n_permutations=20),
        subtyping=SubtypingSettings(k_max=4, n_bootstrap=10, n_null=20), seed=0, sites=site)
    assert summary["cca_p_value"] < 0.05 and summary["r_out_of_sample_cv1"] > 0.6
    assert summary["cluster_k"] == 2
    # the clusters were fitted on the symptoms and site: those are never checked in-sample
    assert "cluster_anhedonia_p_value" not in summary and "cluster_site_p_value" not in summary
    assert "anhedonia: the CCA was fitted on it" in summary["cluster_not_tested"]
    assert summary["cluster_anhedonia_held_out_p_value"] < 0.05  # held-out halves
    agreement = pd.crosstab(scores["subtype"], subtype).to_numpy()
    assert agreement.max(axis=1).sum() >= 0.9 * len(X)


def test_a_link_carried_by_site_alone_is_not_significant():
    """Site moves 6 brain features and both symptoms; within a site there is no link. With
    site regressed out inside each fit and symptoms permuted within site, p > 0.05."""
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((80, 100)), rng.standard_normal((80, 2))
    features, symptoms, site = _frames(X, Y)
    shift = 2.0 * (site == "B").to_numpy()[:, None]
    features.iloc[:, :6] += shift
    symptoms += shift
    _, naive, _ = permutation_test(features.to_numpy(), symptoms.to_numpy(),
                                   MultiviewCCA(20, 2, 0.5), 5, 30, 0)
    assert naive < 0.05  # ignoring site, the shared site offset looks like a link
    summary, _ = multiview_subtypes(
        features, symptoms, symptoms.join(site),
        settings=MultiviewSettings(n_features=20, n_components=2, n_permutations=30),
        subtyping=SubtypingSettings(k_max=3, n_bootstrap=5, n_null=5), seed=0, sites=site)
    assert summary["cca_p_value"] > 0.05


def test_site_is_regressed_out_inside_the_fit():
    """The brain features the CCA sees hold no site mean of the training participants, and
    held-out participants are cleaned with the training fit."""
    rng = np.random.default_rng(6)
    site = np.tile([0.0, 1.0], 40)
    X = rng.standard_normal((80, 30)) + 3 * site[:, None]
    Y = rng.standard_normal((80, 2))
    design = np.c_[X, site]
    model = MultiviewCCA(10, 1, 0.5, n_nuisance=1).fit(design[:60], Y[:60])
    cleaned = model._brain(design)
    gaps = [cleaned[rows][site[rows] == 1].mean(0) - cleaned[rows][site[rows] == 0].mean(0)
            for rows in (slice(0, 60), slice(60, 80))]
    assert np.abs(gaps[0]).max() < 1e-9  # training: removed exactly
    assert np.abs(gaps[1]).mean() < 0.8  # held out: noise only (it was 3 in every feature)
