"""Per-run connectivity matrices (nilearn), alone or in batches of runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from nilearn.connectome import ConnectivityMeasure
from sklearn.covariance import EmpiricalCovariance, LedoitWolf

from brainrep.exclusions import RecordingExcluded, excluding
from brainrep.io import write_sidecar, write_tsv

MIN_VOLUMES = 10


def connectivity(series: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Per-run connectivity matrix (parcels x parcels); no group-level fitting involved.

    Correlation and covariance use the empirical (Pearson) estimate; partial correlation uses
    Ledoit-Wolf shrinkage, since the inverse is ill-posed with fewer volumes than parcels.
    """
    estimator = (LedoitWolf(store_precision=False) if kind == "partial correlation"
                 else EmpiricalCovariance(store_precision=False))  # only covariance_ is read
    matrix = ConnectivityMeasure(cov_estimator=estimator, kind=kind,
                                 standardize="zscore_sample").fit_transform(
        [series.to_numpy()])[0]
    return pd.DataFrame(matrix, index=series.columns, columns=series.columns)


def connectivity_from_timeseries(timeseries_path: str, out_relmat: str, kind: str) -> dict:
    """Connectivity of an existing parcellated time series (rows = volumes, columns = parcels).

    Parcels that are constant (no signal, e.g. outside the field of view) are left out and
    reported in the sidecar's QC record.
    """
    try:
        series = pd.read_csv(timeseries_path, sep="\t")
    except (OSError, EOFError, UnicodeDecodeError, pd.errors.EmptyDataError,
            pd.errors.ParserError) as err:
        raise RecordingExcluded(timeseries_path, "unreadable", f"cannot read this time series "
                                f"({err}). Restore the file, or leave the run out.") from err
    if series.shape[1] < 2:
        raise ValueError(f"{timeseries_path}: expected volumes x parcels with >= 2 columns, got "
                         f"{series.shape}. Point fmri.timeseries at parcellated series.")
    if series.shape[0] < MIN_VOLUMES:
        raise RecordingExcluded(timeseries_path, "too_short", f"{series.shape[0]} volumes, "
                                f"fewer than the {MIN_VOLUMES} a run needs. Leave it out.")
    numeric = all(pd.api.types.is_numeric_dtype(t) for t in series.dtypes)
    values = (series if numeric else series.apply(pd.to_numeric, errors="coerce")
              ).to_numpy(dtype=float)
    if bad := [c for c, ok in zip(series.columns, np.isfinite(values).all(axis=0), strict=True)
               if not ok]:
        raise RecordingExcluded(timeseries_path, "non_finite", f"NaN, infinite or non-numeric "
                                f"values in parcels {bad[:10]}. Regenerate the time series, or "
                                "leave the run out.")
    constant = series.columns[constant_columns(values)]
    series = series.drop(columns=constant)
    write_tsv(connectivity(series, kind), out_relmat, index=True)
    qc = {"n_volumes": int(series.shape[0]), "empty_parcels": list(constant)}
    write_sidecar(out_relmat, sources=[timeseries_path], parameters={"connectivity": kind},
                  qc=qc)
    return qc


def constant_columns(values: np.ndarray) -> np.ndarray:
    """Which columns of ``values`` (volumes x parcels) hold one value throughout: parcels
    without signal. Exact (peak to peak 0), where a standard deviation can leave ~1e-17 for a
    constant column and keep a parcel of pure rounding noise."""
    return np.ptp(values, axis=0) == 0


def connectivity_batch(timeseries_paths: list[str], out_relmats: list[str], kind: str,
                       on_error: str) -> None:
    """:func:`connectivity_from_timeseries` for each run of a batch; a run that fails in a
    known way is excluded alone (``on_error='continue'``) and the others are written."""
    for timeseries, relmat in zip(timeseries_paths, out_relmats, strict=True):
        with excluding(timeseries, [relmat], "fmri_connectivity", on_error):
            connectivity_from_timeseries(timeseries, relmat, kind)
