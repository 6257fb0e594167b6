"""The per-recording EEG stage's settings: the ``eeg`` keys preprocessing and epoching read."""

from __future__ import annotations

from dataclasses import dataclass, field

from brainrep.config import StageSettings


@dataclass(frozen=True, kw_only=True)
class IcaSettings(StageSettings):
    """``eeg.ica``: remove ICA components that ICLabel (mne-icalabel) gives one of the
    ``remove`` labels with probability >= ``threshold``; ``n_components``: a count or the
    explained-variance fraction."""

    enabled: bool = False
    n_components: float = 0.99
    remove: tuple[str, ...] = ("eye blink", "muscle artifact")
    threshold: float = 0.8


@dataclass(frozen=True, kw_only=True)
class EventSettings(StageSettings):
    """``eeg.events``: epochs from ``tmin`` to ``tmax`` s around the events.tsv onsets of
    ``trial_types`` (empty: all), in ``tasks`` (empty: every task); ``baseline`` (s, s) or
    None."""

    tasks: tuple[str, ...] = ()
    trial_types: tuple[str, ...] = ()
    tmin: float = -0.2
    tmax: float = 0.8
    baseline: tuple[float | None, float | None] | None = (None, 0)


@dataclass(frozen=True, kw_only=True)
class PreprocessSettings(StageSettings):
    """What :func:`~brainrep.eeg.run_recording` reads: ``montage`` (an MNE standard montage
    for recordings without electrode positions, or None), the PyPREP
    ``bad_channel_criteria``, ``ica``, ``events`` (None: fixed-length windows), the band-pass
    ``l_freq``-``h_freq`` Hz, ``notch`` at the line frequency, the resampling rate ``sfreq``
    Hz, ``reference`` (``average`` or a channel), windows of ``window_s`` s overlapping by
    ``overlap_s`` s, and the peak-to-peak rejection ``reject_uv`` µV (None: none)."""

    nested = {"ica": IcaSettings, "events": EventSettings}

    montage: str | None = None
    bad_channel_criteria: tuple[str, ...] = ("nan_flat", "deviation", "correlation")
    ica: IcaSettings = field(default_factory=IcaSettings)
    events: EventSettings | None = None
    l_freq: float = 1.0
    h_freq: float = 40.0
    notch: bool = True
    sfreq: float = 100.0
    reference: str = "average"
    window_s: float = 2.0
    overlap_s: float = 0.0
    reject_uv: float | None = 500.0
