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
:mod:`~brainrep.predict.crossval` (cross-validation, permutations, intervals) and
:mod:`~brainrep.predict.curves` (label efficiency, site probe, confound table).
"""

import importlib

#: public name -> the submodule defining it; loaded on first use (PEP 562), so that planning,
#: which reads targets and settings, does not import scikit-learn's estimators
_EXPORTS = {
    **dict.fromkeys(["confound_table", "label_efficiency", "site_probe"], "curves"),
    **dict.fromkeys(["cross_validate", "evaluate", "fold_designs", "permute_within"],
                    "crossval"),
    **dict.fromkeys(["MODELS", "NuisanceRemoval", "TangentSpaceFeatures", "build_model",
                     "is_spd", "register_model"], "models"),
    "PredictionSettings": "settings",
    **dict.fromkeys(["LeakageError", "check_splits", "make_splits", "participant_folds"],
                    "splits"),
    **dict.fromkeys(["METRICS", "PRIMARY", "Target", "class_labels", "is_continuous",
                     "resolve_target"], "targets"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return __all__
