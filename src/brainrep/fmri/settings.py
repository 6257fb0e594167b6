"""The per-run fMRI stage's settings: the ``fmri`` keys parcellation and connectivity read."""

from __future__ import annotations

from dataclasses import dataclass

from brainrep.config import StageSettings


@dataclass(frozen=True, kw_only=True)
class ParcellateSettings(StageSettings):
    """What :func:`~brainrep.fmri.run_recording` reads: the nilearn confound strategy
    ``denoise_strategy`` (``simple``, ``scrubbing`` or ``compcor``), the band-pass
    ``high_pass_hz``-``low_pass_hz`` Hz, and the ``connectivity`` kind (``correlation``,
    ``partial correlation`` or ``covariance``)."""

    denoise_strategy: str = "simple"
    high_pass_hz: float | None = 0.01
    low_pass_hz: float | None = 0.1
    connectivity: str = "correlation"
