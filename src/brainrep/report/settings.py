"""The report stage's settings: the ``downstream`` keys the ``verdict`` rule reads."""

from __future__ import annotations

from dataclasses import dataclass

from brainrep.config import StageSettings


@dataclass(frozen=True, kw_only=True)
class VerdictSettings(StageSettings):
    """The ``confounds`` and the ``site_column`` (nuisance a subtype solution must be free
    of), and the ``n_permutations`` and ``seed`` of the paired tests between feature sets."""

    confounds: tuple[str, ...] = ("age", "sex", "site")
    site_column: str | None = "site"
    n_permutations: int = 100
    seed: int = 0

    @property
    def nuisance(self) -> list[str]:
        """The covariates a subtype solution must not be associated with: the confounds,
        the site column and mean framewise displacement."""
        return [*self.confounds, *([self.site_column] if self.site_column else []),
                "mean_fd_mm"]
