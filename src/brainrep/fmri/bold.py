"""Per-run parcellation of preprocessed BOLD: denoising, parcel series, QC and the run's
connectivity matrix."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.image import resample_to_img
from nilearn.interfaces.fmriprep import load_confounds_strategy
from nilearn.maskers import NiftiLabelsMasker, NiftiSpheresMasker

from brainrep.atlases import Atlas
from brainrep.exclusions import RecordingExcluded
from brainrep.fmri.matrices import MIN_VOLUMES, connectivity, constant_columns
from brainrep.fmri.settings import ParcellateSettings
from brainrep.io import write_sidecar, write_tsv


def repetition_time(bold_path: str | Path) -> float:
    """TR in seconds from the JSON sidecar, else from the NIfTI header."""
    sidecar = Path(str(bold_path).replace(".nii.gz", ".json"))
    if sidecar.is_file():
        tr = json.loads(sidecar.read_text()).get("RepetitionTime")
        if tr:
            return float(tr)
    return float(nib.load(bold_path).header.get_zooms()[3])


def temporal_snr(bold: nib.Nifti1Image, mask: np.ndarray) -> float:
    """Median over ``mask`` voxels of mean / SD over time of the BOLD before denoising."""
    data = np.asarray(bold.dataobj, dtype=np.float32)[mask]
    sd = data.std(axis=1)
    keep = sd > 0
    return float(np.median(data[keep].mean(axis=1) / sd[keep])) if keep.any() else 0.0


def _masker(atlas: Atlas, bold: nib.Nifti1Image, **signal):
    """The nilearn masker of an atlas on this BOLD grid, its region names and the voxels it
    covers (for tSNR). Label images are resampled to the grid (nearest neighbour)."""
    if atlas.coordinates is not None:
        masker = NiftiSpheresMasker(atlas.coordinates, radius=atlas.radius_mm,
                                    allow_overlap=True, **signal)
        return masker, list(atlas.labels), np.abs(np.asarray(bold.dataobj[..., 0])) > 0
    image = resample_to_img(atlas.image, bold.slicer[..., 0], interpolation="nearest",
                            copy_header=True, force_resample=True)
    values = np.asarray(image.dataobj).astype(int)
    present = np.unique(values[values > 0])
    unknown = sorted(int(v) for v in set(present) - set(atlas.labels.index))
    if unknown:
        raise ValueError(f"{atlas.image}: atlas values {unknown} have no label in the labels "
                         "file. Add them.")
    masker = NiftiLabelsMasker(image, **signal)
    return masker, list(atlas.labels), values > 0


def parcellate(bold_path: str, confounds_path: str, atlas: Atlas, strategy: str,
               high_pass_hz: float, low_pass_hz: float | None) -> tuple[pd.DataFrame, dict]:
    """Mean denoised signal per region, shape (n_kept_volumes, n_regions), and a QC record.

    Confounds come from the fMRIPrep table ``confounds_path`` beside ``bold_path`` through
    nilearn's ``load_confounds_strategy``. Regions with no signal on this grid (outside the
    field of view) are reported in the QC record and left out.
    """
    bold = nib.load(bold_path)
    if bold.ndim != 4:
        raise ValueError(f"{bold_path}: expected 4D BOLD, got shape {bold.shape}. Point "
                         "fmri.derivatives at preprocessed BOLD runs.")
    if bold.shape[3] < MIN_VOLUMES:
        raise RecordingExcluded(bold_path, "too_short", f"{bold.shape[3]} volumes, fewer than "
                                f"the {MIN_VOLUMES} a run needs. Leave this run out.")
    if n_bad := int((~np.isfinite(np.asarray(bold.dataobj, dtype=np.float32))).sum()):
        raise RecordingExcluded(bold_path, "non_finite", f"{n_bad} NaN or infinite values in "
                                "the BOLD data. Rerun its preprocessing, or leave the run out.")
    try:
        confounds, sample_mask = load_confounds_strategy(bold_path, denoise_strategy=strategy)
    except (ValueError, FileNotFoundError) as err:
        raise ValueError(f"{bold_path}: no usable fMRIPrep confounds beside it ({err}). "
                         "Add *_desc-confounds_timeseries.tsv next to the BOLD file.") from err
    used = (confounds if confounds is None or sample_mask is None
            else confounds.iloc[sample_mask])  # rows the denoising keeps
    if used is not None and (bad := [c for c in used.columns if not np.isfinite(used[c]).all()]):
        raise RecordingExcluded(confounds_path, "non_finite", f"NaN or infinite values in "
                                f"confound columns {bad} of the volumes kept. Rerun fMRIPrep, "
                                "or choose an "
                                "fmri.denoise_strategy without these columns.")
    n_volumes = bold.shape[3]
    if sample_mask is not None and len(sample_mask) < MIN_VOLUMES:
        raise RecordingExcluded(bold_path, "too_short", f"denoise strategy {strategy!r} keeps "
                                f"{len(sample_mask)} of {n_volumes} volumes (too much motion). "
                                "Choose a strategy without scrubbing, or leave the run out.")
    masker, names, covered = _masker(atlas, bold, standardize="zscore_sample", detrend=True,
                                     high_pass=high_pass_hz, low_pass=low_pass_hz,
                                     t_r=repetition_time(bold_path))
    try:
        series = pd.DataFrame(masker.fit_transform(bold, confounds=confounds,
                                                   sample_mask=sample_mask))
    except ValueError as err:
        if "padlen" not in str(err):
            raise
        raise RecordingExcluded(bold_path, "too_short", f"{n_volumes} volumes are too few for "
                                f"the temporal filter ({err}). Set fmri.high_pass_hz and "
                                "fmri.low_pass_hz to null, or leave the run out.") from err
    if atlas.coordinates is None:  # columns follow the label values present on this grid
        series.columns = [str(atlas.labels[masker.region_ids_[i]]) for i in series.columns]
    else:
        series.columns = names
    constant = dict(zip(series.columns, constant_columns(series.to_numpy(dtype=float)),
                        strict=True))
    empty = [name for name in names if name not in series or constant[name]]
    fd = pd.read_csv(confounds_path, sep="\t", na_values=["n/a"])["framewise_displacement"]
    qc = {"n_volumes": n_volumes, "n_kept": int(series.shape[0]),
          "fraction_censored": 1 - series.shape[0] / n_volumes,
          "mean_fd_mm": float(np.nanmean(fd)), "max_fd_mm": float(np.nanmax(fd)),
          "tsnr": temporal_snr(bold, covered), "empty_parcels": empty,
          "confounds": list(confounds.columns) if confounds is not None else []}
    return series.drop(columns=[c for c in empty if c in series]), qc


def run_recording(bold_path: str, confounds_path: str, atlas: Atlas, out_timeseries: str,
                  out_relmat: str, *, settings: ParcellateSettings) -> dict:
    """Parcellate one run, write its time series, connectivity matrix and sidecars."""
    series, qc = parcellate(bold_path, confounds_path, atlas, settings.denoise_strategy,
                            settings.high_pass_hz, settings.low_pass_hz)
    series.to_csv(out_timeseries, sep="\t", index=False)
    write_tsv(connectivity(series, settings.connectivity), out_relmat, index=True)
    for out in (out_timeseries, out_relmat):
        write_sidecar(out, sources=[bold_path, confounds_path, atlas.image or atlas.name],
                      parameters=settings.to_dict(), qc=qc)
    return qc
