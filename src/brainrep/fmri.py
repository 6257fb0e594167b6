"""fMRI stage: denoise and parcellate template-space BOLD, per-run connectivity, training crops."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.connectome import ConnectivityMeasure
from nilearn.image import resample_to_img
from nilearn.interfaces.fmriprep import load_confounds_strategy
from nilearn.maskers import NiftiLabelsMasker
from sklearn.covariance import EmpiricalCovariance, LedoitWolf

from brainrep.io import write_sidecar


def repetition_time(bold_path: str | Path) -> float:
    """TR in seconds from the JSON sidecar, else from the NIfTI header."""
    sidecar = Path(str(bold_path).replace(".nii.gz", ".json"))
    if sidecar.is_file():
        tr = json.loads(sidecar.read_text()).get("RepetitionTime")
        if tr:
            return float(tr)
    return float(nib.load(bold_path).header.get_zooms()[3])


def parcellate(bold_path: str, confounds_path: str, atlas_image: str, atlas_labels: str,
               strategy: str,
               high_pass_hz: float, low_pass_hz: float | None) -> tuple[pd.DataFrame, dict]:
    """Mean denoised signal per parcel, shape (n_kept_volumes, n_parcels), and a QC record.

    Confounds come from the fMRIPrep table ``confounds_path`` beside ``bold_path`` through
    nilearn's ``load_confounds_strategy``; the atlas is resampled to the BOLD grid (nearest
    neighbour). Parcels with no voxel on that grid are reported in the QC record and left out.
    """
    bold = nib.load(bold_path)
    if bold.ndim != 4 or bold.shape[3] < 10:
        raise ValueError(f"{bold_path}: expected 4D BOLD with >= 10 volumes, got shape "
                         f"{bold.shape}. Point fmri.derivatives at preprocessed BOLD runs.")
    try:
        confounds, sample_mask = load_confounds_strategy(bold_path, denoise_strategy=strategy)
    except (ValueError, FileNotFoundError) as err:
        raise ValueError(f"{bold_path}: no usable fMRIPrep confounds beside it ({err}). "
                         "Add *_desc-confounds_timeseries.tsv next to the BOLD file.") from err
    names = pd.read_csv(atlas_labels, sep="\t").set_index("index")["name"]
    atlas = resample_to_img(atlas_image, bold.slicer[..., 0], interpolation="nearest",
                            copy_header=True, force_resample=True)
    present = np.unique(np.asarray(atlas.dataobj)).astype(int)
    present = present[present > 0]
    unknown = sorted(set(present) - set(names.index))
    if unknown:
        raise ValueError(f"{atlas_labels}: atlas values {unknown} have no label. Add them.")
    masker = NiftiLabelsMasker(atlas, standardize="zscore_sample", detrend=True,
                               high_pass=high_pass_hz, low_pass=low_pass_hz,
                               t_r=repetition_time(bold_path))
    series = masker.fit_transform(bold, confounds=confounds, sample_mask=sample_mask)
    n_volumes = bold.shape[3]
    fd = pd.read_csv(confounds_path, sep="\t", na_values=["n/a"])["framewise_displacement"]
    qc = {"n_volumes": n_volumes, "n_kept": int(series.shape[0]),
          "fraction_censored": 1 - series.shape[0] / n_volumes,
          "mean_fd_mm": float(np.nanmean(fd)), "max_fd_mm": float(np.nanmax(fd)),
          "empty_parcels": [str(names[i]) for i in names.index if i not in present],
          "confounds": list(confounds.columns) if confounds is not None else []}
    return pd.DataFrame(series, columns=[str(names[i]) for i in present]), qc


def connectivity(series: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Per-run connectivity matrix (parcels x parcels); no group-level fitting involved.

    Correlation and covariance use the empirical (Pearson) estimate; partial correlation uses
    Ledoit-Wolf shrinkage, since the inverse is ill-posed with fewer volumes than parcels.
    """
    estimator = LedoitWolf() if kind == "partial correlation" else EmpiricalCovariance()
    matrix = ConnectivityMeasure(cov_estimator=estimator, kind=kind,
                                 standardize="zscore_sample").fit_transform(
        [series.to_numpy()])[0]
    return pd.DataFrame(matrix, index=series.columns, columns=series.columns)


def run_recording(bold_path: str, confounds_path: str, atlas_image: str, atlas_labels: str,
                  out_timeseries: str, out_relmat: str, params: dict) -> dict:
    """Parcellate one run, write its time series, connectivity matrix and sidecars."""
    series, qc = parcellate(bold_path, confounds_path, atlas_image, atlas_labels,
                            params["denoise_strategy"], params["high_pass_hz"],
                            params["low_pass_hz"])
    series.to_csv(out_timeseries, sep="\t", index=False)
    connectivity(series, params["connectivity"]).to_csv(out_relmat, sep="\t")
    for out in (out_timeseries, out_relmat):
        write_sidecar(out, sources=[bold_path, confounds_path, atlas_image], parameters=params,
                      qc=qc)
    return qc


def connectivity_from_timeseries(timeseries_path: str, out_relmat: str, kind: str) -> dict:
    """Connectivity of an existing parcellated time series (rows = volumes, columns = parcels).

    Parcels that are constant (no signal, e.g. outside the field of view) are left out and
    reported in the sidecar's QC record.
    """
    series = pd.read_csv(timeseries_path, sep="\t")
    if series.shape[0] < 10 or series.shape[1] < 2:
        raise ValueError(f"{timeseries_path}: expected volumes x parcels with >= 10 rows and "
                         f">= 2 columns, got {series.shape}.")
    constant = series.columns[series.std() == 0]
    series = series.drop(columns=constant)
    connectivity(series, kind).to_csv(out_relmat, sep="\t")
    qc = {"n_volumes": int(series.shape[0]), "empty_parcels": list(constant)}
    write_sidecar(out_relmat, sources=[timeseries_path], parameters={"connectivity": kind},
                  qc=qc)
    return qc


def edge_table(relmat_files: list[str], participant_ids: list[str]) -> pd.DataFrame:
    """Fisher-z upper triangle of each participant's matrix, one column per ``a__b`` edge.

    Edges missing for any participant (a parcel without signal) are left out for all.
    """
    rows = []
    for path in relmat_files:
        matrix = pd.read_csv(path, sep="\t", index_col=0)
        upper = np.triu_indices(len(matrix), k=1)
        values = np.arctanh(np.clip(matrix.to_numpy()[upper], -0.999999, 0.999999))
        rows.append(pd.Series(values, index=[f"{matrix.index[i]}__{matrix.columns[j]}"
                                             for i, j in zip(*upper, strict=True)]))
    frame = pd.DataFrame(rows).dropna(axis=1)
    frame.insert(0, "participant_id", participant_ids)
    return frame.groupby("participant_id", sort=True).mean().reset_index()


def stack_crops(timeseries_files: list[str], participant_ids: list[str], length: int,
                step: int, out_array: str, out_table: str) -> None:
    """Overlapping crops of every run's parcel series, shape (n_crops, n_parcels, length)."""
    crops, rows = [], []
    for path, participant in zip(timeseries_files, participant_ids, strict=True):
        series = pd.read_csv(path, sep="\t").to_numpy(dtype=np.float32).T
        starts = range(0, series.shape[1] - length + 1, step)
        if not starts:
            raise ValueError(f"{path}: {series.shape[1]} volumes kept, fewer than "
                             f"fmri.window_volumes={length}. Lower it.")
        for window, start in enumerate(starts):
            crops.append(series[:, start:start + length])
            rows.append({"participant_id": participant, "window": window, "onset_vol": start})
    np.save(out_array, np.stack(crops))
    pd.DataFrame(rows).to_csv(out_table, sep="\t", index=False)
    write_sidecar(out_array, sources=timeseries_files, window_volumes=length, step=step)
