"""fMRI stage (``workflow/rules/fmri.smk``): denoise and parcellate template-space BOLD
(:mod:`.bold`, settings in :mod:`.settings`), per-run connectivity matrices alone or in
batches (:mod:`.matrices`), and the group stage: run selection, parcel coverage, edge and
covariance tables and QC-FC (:mod:`.group`), and the window store (:mod:`.windows`).

Submodules load on first use of one of their names (SPEC 1, ``lazy_loader``): planning reads
the settings without importing nilearn.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "bold": ["parcellate", "repetition_time", "run_recording", "temporal_snr"],
    "figures": ["connectivity_figure"],
    "group": ["CovarianceRows", "covariance_table", "edge_table", "flag_exclusions",
              "mean_connectivity", "parcel_coverage", "qc_fc", "relmat_labels", "select_runs",
              "write_edge_table", "write_group_tables", "write_series_tables"],
    "matrices": ["MIN_VOLUMES", "connectivity", "connectivity_batch",
                 "connectivity_from_timeseries", "constant_columns"],
    "settings": ["GroupSettings", "ParcellateSettings", "QcThresholds"],
    "windows": ["read_series", "stack_crops"],
})
