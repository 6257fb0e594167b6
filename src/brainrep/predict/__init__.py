"""Honest prediction: participant-grouped nested CV, site-aware permutation tests, baselines.

Targets are participants.tsv columns: binary, multi-class or continuous (:class:`Target`).
Every fitted step is fitted on the outer training folds only: the label-free steps
(tangent-space projection, deconfounding, ComBat) once per outer fold (:func:`fold_designs`,
reused by every label permutation), then the supervised pipeline (scaling and a linear model
from :data:`MODELS` whose hyper-parameters are tuned by an inner loop). Splits are saved and
checked so that no participant is ever both trained on and tested.

Modules: :mod:`~brainrep.predict.targets` (targets, metrics, chance),
:mod:`~brainrep.predict.models` (the model registry and label-free steps),
:mod:`~brainrep.predict.splits` (outer folds and the leakage check),
:mod:`~brainrep.predict.settings` (:class:`PredictionSettings`, what they all read),
:mod:`~brainrep.predict.crossval` (cross-validation, permutations, intervals),
:mod:`~brainrep.predict.ondisk` (a feature table's values on disk, read a fold at a time),
:mod:`~brainrep.predict.curves` (label efficiency, site probe, confound table),
:mod:`~brainrep.predict.stage` (all of them for one target, one feature table at a time) and
:mod:`~brainrep.predict.resources` (the memory a prediction job asks its scheduler for).
"""

import lazy_loader

# submodules load on first use of one of their names (SPEC 1): planning reads settings and
# targets without importing scikit-learn's estimators
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "crossval": ["cross_validate", "evaluate", "fold_designs", "permute_within"],
    "curves": ["confound_table", "label_efficiency", "site_probe"],
    "figures": ["label_efficiency_figure", "metrics_figure", "predictions_figure"],
    "models": ["MODELS", "MatrixLogarithms", "NuisanceRemoval", "TangentSpaceFeatures",
               "build_model", "is_spd", "register_model"],
    "resources": ["memory_mb"],
    "settings": ["PredictionSettings"],
    "splits": ["LeakageError", "check_splits", "make_splits", "participant_folds"],
    "stage": ["TargetResults", "predict_target"],
    "targets": ["METRICS", "PRIMARY", "Target", "class_labels", "is_continuous",
                "resolve_target"],
})
