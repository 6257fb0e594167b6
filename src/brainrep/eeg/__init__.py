"""EEG stage (``workflow/rules/eeg.smk``): read any MNE-BIDS format (:mod:`.read`),
preprocess and window each recording (:mod:`.preprocess`, settings in :mod:`.settings`), and
stack the windows with the classical band-power and covariance features (:mod:`.features`)."""

from brainrep.eeg.features import band_power, band_power_table, covariance_table, stack_windows
from brainrep.eeg.preprocess import (
    detect_bad_channels,
    line_noise_ratio,
    make_event_epochs,
    make_windows,
    preprocess,
    remove_artifact_components,
    run_recording,
)
from brainrep.eeg.read import (
    check_against_sidecar,
    electrode_positions,
    normalise_channel,
    read_bids_eeg,
    set_standard_montage,
)
from brainrep.eeg.settings import EventSettings, IcaSettings, PreprocessSettings

__all__ = ["EventSettings", "IcaSettings", "PreprocessSettings", "band_power",
           "band_power_table", "check_against_sidecar", "covariance_table",
           "detect_bad_channels", "electrode_positions", "line_noise_ratio",
           "make_event_epochs", "make_windows", "normalise_channel", "preprocess",
           "read_bids_eeg", "remove_artifact_components", "run_recording",
           "set_standard_montage", "stack_windows"]
