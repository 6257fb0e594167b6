"""EEG stage (``workflow/rules/eeg.smk``): read any MNE-BIDS or registered format
(:mod:`.read`, the reader registry in :mod:`.formats`),
preprocess and window each recording (:mod:`.recording`, settings in :mod:`.settings`), and
stack the windows with the classical band-power and covariance features (:mod:`.features`).

Submodules load on first use of one of their names (SPEC 1, ``lazy_loader``): planning reads
the settings without importing PyPREP, mne-icalabel or torch.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "figures": ["eeg_psd_figure", "recording_psd_figure"],
    "formats": ["READERS", "register_reader"],
    "features": ["band_power", "band_power_table", "covariance_table", "stack_windows"],
    "read": ["apply_bids_sidecars", "check_against_sidecar", "electrode_positions",
             "normalise_channel", "read_bids_eeg", "set_standard_montage"],
    "recording": ["detect_bad_channels", "line_noise_ratio", "make_event_epochs",
                  "make_windows", "preprocess", "remove_artifact_components", "run_recording"],
    "settings": ["EventSettings", "IcaSettings", "PreprocessSettings"],
})
