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
:mod:`~brainrep.predict.evaluate` (cross-validation, permutations, intervals) and
:mod:`~brainrep.predict.curves` (label efficiency, site probe, confound table).
"""

from brainrep.predict.curves import confound_table, label_efficiency, site_probe
from brainrep.predict.evaluate import cross_validate, evaluate, fold_designs, permute_within
from brainrep.predict.models import (
    MODELS,
    NuisanceRemoval,
    TangentSpaceFeatures,
    build_model,
    is_spd,
    register_model,
)
from brainrep.predict.splits import LeakageError, check_splits, make_splits, participant_folds
from brainrep.predict.targets import (
    METRICS,
    PRIMARY,
    Target,
    class_labels,
    is_continuous,
    resolve_target,
)

__all__ = ["METRICS", "MODELS", "PRIMARY", "LeakageError", "NuisanceRemoval",
           "TangentSpaceFeatures", "Target", "build_model", "check_splits", "class_labels",
           "confound_table", "cross_validate", "evaluate", "fold_designs", "is_continuous",
           "is_spd", "label_efficiency", "make_splits", "participant_folds", "permute_within",
           "register_model", "resolve_target", "site_probe"]
