"""The fMRI stage's settings: the ``fmri`` keys parcellation, connectivity and the group stage
read."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True, kw_only=True)
class QcThresholds(StageSettings):
    """``fmri.qc``: a run beyond one threshold is excluded (None disables it): mean
    framewise displacement (mm), fraction of censored volumes, minimum temporal SNR and the
    fraction of its parcels without signal."""

    max_mean_fd_mm: float | None = 0.5
    max_fraction_censored: float | None = 0.5
    min_tsnr: float | None = None
    max_fraction_empty_parcels: float | None = 0.1


@dataclass(frozen=True, kw_only=True)
class GroupSettings(StageSettings):
    """What the ``fmri_windows`` rule reads: the run ``qc`` thresholds, the fraction of runs
    above which a parcel missing in them is dropped for all, the crops' length and step
    (``window_volumes``, ``window_step``, volumes), and the participants whose rows the
    group tables are written in chunks of (``participants_per_chunk``)."""

    nested = {"qc": QcThresholds}

    qc: QcThresholds = field(default_factory=QcThresholds)
    max_fraction_runs_missing_parcel: float = 0.1
    window_volumes: int = 40
    window_step: int = 10
    participants_per_chunk: int = 100
