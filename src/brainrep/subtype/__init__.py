"""Subtyping stage (``workflow/rules/downstream.smk``: ``subtype_*``, ``fmri_states``):
clusters with their stability, replication and null tests and non-circular checks
(:mod:`.clusters`), CCA/PLS multiview subtypes (:mod:`.multiview`), dynamic brain states
(:mod:`.states`); settings in :mod:`.settings`. Submodules load on first use of one of their
names (SPEC 1, ``lazy_loader``).
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "clusters": ["CLUSTERING", "Clusterer", "add_fdr", "agglomerative", "association_checks",
                 "bootstrap_stability", "choose_k", "cluster", "fill_gaps", "find_subtypes",
                 "gaussian_draws", "gaussian_null_p", "gmm", "kmeans", "nuisance_fit", "reduce",
                 "register_clustering", "replication_ari", "subtype_profiles"],
    "figures": ["profiles_figure", "stability_figure"],
    "multiview": ["MultiviewCCA", "canonical_correlations", "held_out_symptom_checks",
                  "multiview_subtypes", "out_of_sample_correlations", "permutation_test",
                  "screen_features"],
    "settings": ["MultiviewSettings", "MultiviewStageSettings", "StatesSettings",
                 "SubtypeStageSettings", "SubtypingSettings"],
    "states": ["fit_states", "state_features", "state_summaries"],
})
