"""The prediction harness's settings: the ``downstream`` keys it reads, typed and frozen."""

from __future__ import annotations

from dataclasses import dataclass

from brainrep.config import StageSettings


@dataclass(frozen=True, kw_only=True)
class PredictionSettings(StageSettings):
    """What :func:`~brainrep.predict.evaluate`, :func:`~brainrep.predict.label_efficiency` and
    :func:`~brainrep.predict.site_probe` read. The defaults are the config schema's
    (``downstream.*``; a test ties them); the workflow builds it with :meth:`from_config`.

    ``positive_class``: the scored class of binary targets (one for all, or per target);
    ``site_column``: participants.tsv column of acquisition sites (leave-site-out, permutations
    within site, ComBat), None without sites; ``deconfound``: participants.tsv columns
    regressed out inside training folds; ``combat``: harmonize sites inside training folds;
    ``outer_folds``/``inner_folds``: the nested cross-validation; ``n_permutations``: label
    permutations of the p-values (0: none); ``n_bootstrap``: resamples of the 95 % intervals;
    ``label_fractions``/``label_repeats``: the label-efficiency curve; ``seed``: every draw.
    """

    positive_class: str | dict[str, str] | None = "patient"
    model: str = "ridge"
    site_column: str | None = "site"
    deconfound: tuple[str, ...] = ()
    combat: bool = False
    outer_folds: int = 5
    inner_folds: int = 3
    n_permutations: int = 100
    n_bootstrap: int = 1000
    label_fractions: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    label_repeats: int = 5
    seed: int = 0
