"""The subtyping stage's settings: ``downstream.subtyping``, ``downstream.multiview`` and
``downstream.states``, and what each of its rules reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from brainrep.config import StageSettings


@dataclass(frozen=True, kw_only=True)
class SubtypingSettings(StageSettings):
    """Subtypes among participants whose ``column`` is ``value``, per feature set of
    ``feature_sets``: the ``regress_out`` covariates removed, ``n_components`` PCA
    dimensions, k from ``k_min`` to ``k_max`` by the :data:`~brainrep.subtype.CLUSTERING`
    ``method``, ``n_bootstrap`` resamples for stability, ``n_null`` single-Gaussian draws for
    the null, and the participants.tsv columns ``check`` tested against each solution."""

    column: str = "diagnosis"
    value: str = "patient"
    method: str = "kmeans"
    feature_sets: tuple[str, ...] = ("eeg_bandpower", "fmri_connectivity", "ssl_eeg",
                                     "ssl_fmri")
    regress_out: tuple[str, ...] = ("site",)
    check: tuple[str, ...] = ("site", "age", "sex", "anhedonia", "anxiety")
    k_min: int = 2
    k_max: int = 5
    n_components: int = 5
    n_bootstrap: int = 50
    n_null: int = 100

    @property
    def k_range(self) -> range:
        """The numbers of clusters tried."""
        return range(self.k_min, self.k_max + 1)

    def population(self, participants: pd.DataFrame) -> pd.Index:
        """The participants (index of ``participants``) whose ``column`` is ``value``."""
        return participants.index[participants[self.column].astype(str) == self.value]

    def checks(self, participants: pd.DataFrame) -> list[str]:
        """The columns tested against a solution: ``check``, and mean FD where known."""
        return [*self.check, *(["mean_fd_mm"] if "mean_fd_mm" in participants else [])]


@dataclass(frozen=True, kw_only=True)
class MultiviewSettings(StageSettings):
    """Canonical correlation of ``feature_set`` with the ``symptoms`` columns: the
    ``n_features`` features that correlate most with the symptoms (screened in training
    folds), ``n_components`` canonical pairs with ``shrinkage``, ``n_folds`` held-out folds
    and ``n_permutations`` for the p-value; ``enabled`` false skips it."""

    enabled: bool = True
    feature_set: str = "fmri_connectivity"
    symptoms: tuple[str, ...] = ("anhedonia", "anxiety")
    n_features: int = 100
    n_components: int = 2
    shrinkage: float = 0.5
    n_folds: int = 5
    n_permutations: int = 100


@dataclass(frozen=True, kw_only=True)
class StatesSettings(StageSettings):
    """Gaussian HMM brain states: ``n_states`` states on ``n_components`` PCA dimensions of
    the parcel series; ``enabled`` false skips them."""

    enabled: bool = True
    n_states: int = 4
    n_components: int = 5


@dataclass(frozen=True, kw_only=True)
class SubtypeStageSettings(StageSettings):
    """What the ``subtype_participants`` rule reads: ``subtyping`` and the ``seed``."""

    nested = {"subtyping": SubtypingSettings}

    seed: int = 0
    subtyping: SubtypingSettings = field(default_factory=SubtypingSettings)


@dataclass(frozen=True, kw_only=True)
class MultiviewStageSettings(StageSettings):
    """What the ``subtype_multiview`` rule reads: ``multiview``, ``subtyping`` (population,
    k range, checks), the ``site_column`` and the ``seed``."""

    nested = {"multiview": MultiviewSettings, "subtyping": SubtypingSettings}

    site_column: str | None = "site"
    multiview: MultiviewSettings = field(default_factory=MultiviewSettings)
    seed: int = 0
    subtyping: SubtypingSettings = field(default_factory=SubtypingSettings)
