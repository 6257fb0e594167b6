"""fMRI stage: denoise and parcellate template-space BOLD, per-run connectivity, training crops."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.connectome import ConnectivityMeasure
from nilearn.image import resample_to_img
from nilearn.interfaces.fmriprep import load_confounds_strategy
from nilearn.maskers import NiftiLabelsMasker, NiftiSpheresMasker
from sklearn.covariance import EmpiricalCovariance, LedoitWolf

from brainrep.atlases import Atlas
from brainrep.exclusions import RecordingExcluded, excluding, exclusion, ledger
from brainrep.io import atomic_output, collect_qc, write_sidecar

MIN_VOLUMES = 10


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
    empty = [name for name in names if name not in series or series[name].std() == 0]
    fd = pd.read_csv(confounds_path, sep="\t", na_values=["n/a"])["framewise_displacement"]
    qc = {"n_volumes": n_volumes, "n_kept": int(series.shape[0]),
          "fraction_censored": 1 - series.shape[0] / n_volumes,
          "mean_fd_mm": float(np.nanmean(fd)), "max_fd_mm": float(np.nanmax(fd)),
          "tsnr": temporal_snr(bold, covered), "empty_parcels": empty,
          "confounds": list(confounds.columns) if confounds is not None else []}
    return series.drop(columns=[c for c in empty if c in series]), qc


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


def run_recording(bold_path: str, confounds_path: str, atlas: Atlas, out_timeseries: str,
                  out_relmat: str, params: dict) -> dict:
    """Parcellate one run, write its time series, connectivity matrix and sidecars."""
    series, qc = parcellate(bold_path, confounds_path, atlas, params["denoise_strategy"],
                            params["high_pass_hz"], params["low_pass_hz"])
    series.to_csv(out_timeseries, sep="\t", index=False)
    connectivity(series, params["connectivity"]).to_csv(out_relmat, sep="\t")
    for out in (out_timeseries, out_relmat):
        write_sidecar(out, sources=[bold_path, confounds_path, atlas.image or atlas.name],
                      parameters=params, qc=qc)
    return qc


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
    constant = series.columns[np.ptp(values, axis=0) == 0]
    series = series.drop(columns=constant)
    connectivity(series, kind).to_csv(out_relmat, sep="\t")
    qc = {"n_volumes": int(series.shape[0]), "empty_parcels": list(constant)}
    write_sidecar(out_relmat, sources=[timeseries_path], parameters={"connectivity": kind},
                  qc=qc)
    return qc


def connectivity_batch(timeseries_paths: list[str], out_relmats: list[str], kind: str,
                       on_error: str) -> None:
    """:func:`connectivity_from_timeseries` for each run of a batch; a run that fails in a
    known way is excluded alone (``on_error='continue'``) and the others are written."""
    for timeseries, relmat in zip(timeseries_paths, out_relmats, strict=True):
        with excluding(timeseries, [relmat], "fmri_connectivity", on_error):
            connectivity_from_timeseries(timeseries, relmat, kind)


def flag_exclusions(qc: pd.DataFrame, thresholds: dict) -> pd.DataFrame:
    """Add ``excluded`` and ``exclusion_reason`` to a per-run QC table.

    ``thresholds`` holds ``max_mean_fd_mm``, ``max_fraction_censored``, ``min_tsnr`` and
    ``max_fraction_empty_parcels`` (None disables one); a metric the table lacks (e.g. motion
    for parcellated inputs) excludes no one.
    """
    checks = (("mean_fd_mm", "max_mean_fd_mm", ">"),
              ("fraction_censored", "max_fraction_censored", ">"),
              ("tsnr", "min_tsnr", "<"),
              ("fraction_empty_parcels", "max_fraction_empty_parcels", ">"))
    reasons = pd.Series([[] for _ in range(len(qc))], index=qc.index)
    for column, key, side in checks:
        limit = thresholds.get(key)
        if limit is None or column not in qc:
            continue
        values = pd.to_numeric(qc[column], errors="coerce")
        bad = values > limit if side == ">" else values < limit
        for i in qc.index[bad]:
            reasons[i].append(f"{column} {values[i]:.3g} {side} {limit}")
    return qc.assign(excluded=[bool(r) for r in reasons],
                     exclusion_reason=["; ".join(r) or "n/a" for r in reasons])


def select_runs(relmats: list[str], keys: list[str], thresholds: dict,
                window_volumes: int) -> tuple[pd.DataFrame, pd.DataFrame, list[int]]:
    """Decide which runs enter the group stage.

    ``relmats`` are the per-run outputs (their sidecars hold the QC record, or the exclusion
    of a run that failed in a known way) and ``keys`` their recording keys. Returns the QC
    table of the processed runs with :func:`flag_exclusions`' columns (``excluded`` also
    marks runs with fewer kept volumes than one ``window_volumes`` crop), the exclusion ledger
    of every run and the indices of the runs kept.
    """
    runs = ledger(keys, relmats, "func")
    processed = [i for i, path in enumerate(relmats) if exclusion(path) is None]
    qc = collect_qc([relmats[i] for i in processed], [keys[i].split("_")[0] for i in processed])
    if processed:  # over the parcels with signal in some run (not those outside every FOV)
        present = [set(relmat_labels(relmats[i])) for i in processed]
        union = set().union(*present)
        qc["fraction_empty_parcels"] = [1 - len(p) / max(len(union), 1) for p in present]
    qc = flag_exclusions(qc, thresholds)
    n_kept = pd.to_numeric(qc.get("n_kept", qc.get("n_volumes")), errors="coerce")
    kept = []
    for row, i in enumerate(processed):
        reason = None
        if qc["excluded"].iloc[row]:
            reason, message = "failed_qc", qc["exclusion_reason"].iloc[row]
        elif n_kept.iloc[row] < window_volumes:
            reason = "too_short"
            message = (f"{n_kept.iloc[row]} volumes kept, fewer than fmri.window_volumes="
                       f"{window_volumes}. Lower it to keep this run.")
            qc.loc[qc.index[row], ["excluded", "exclusion_reason"]] = [True, message]
        if reason:
            runs.loc[i, ["status", "stage", "reason", "message"]] = [
                "excluded", "fmri_windows", reason, f"{relmats[i]}: {message}"]
        else:
            kept.append(i)
    if not kept:
        raise RuntimeError(f"every one of the {len(keys)} fMRI runs was excluded; see "
                           "group/fmri/exclusions.tsv")
    return qc, runs, kept


def qc_fc(edges: pd.DataFrame, motion: pd.Series) -> pd.DataFrame:
    """QC-FC: correlation across participants of every edge with mean FD, with its p-value.

    ``edges`` is :func:`edge_table`'s output; ``motion`` is indexed by participant_id.
    """
    from scipy.stats import pearsonr

    values = edges.set_index("participant_id")
    fd = motion.reindex(values.index).to_numpy(dtype=float)
    rows = [(edge, *pearsonr(values[edge].to_numpy(), fd)) for edge in values.columns]
    return pd.DataFrame(rows, columns=["edge", "r", "p_value"])


def relmat_labels(relmat_file: str) -> list[str]:
    """Parcel labels of a connectivity matrix TSV, from its header line alone."""
    with open(relmat_file, newline="") as table:
        return next(csv.reader(table, delimiter="\t"))[1:]


def parcel_coverage(relmat_files: list[str], max_fraction_missing: float) -> pd.DataFrame:
    """One row per parcel present in any run (in order of first appearance): in how many runs
    it is missing (no signal), that fraction, and whether it is ``kept`` (missing in at most
    ``max_fraction_missing`` of the runs). The kept parcels no longer shrink with the cohort:
    one run without a parcel does not remove it for everyone."""
    labels = [relmat_labels(path) for path in relmat_files]
    parcels = list(dict.fromkeys(label for run in labels for label in run))
    present = Counter(label for run in labels for label in set(run))
    missing = np.array([len(relmat_files) - present[p] for p in parcels])
    fraction = missing / max(len(relmat_files), 1)
    return pd.DataFrame({"parcel": parcels, "n_runs_missing": missing,
                         "fraction_runs_missing": fraction,
                         "kept": fraction <= max_fraction_missing})


def edge_table(relmat_files: list[str], participant_ids: list[str],
               parcels: list[str]) -> pd.DataFrame:
    """Fisher-z upper triangle of each participant's matrix over ``parcels``, one column per
    ``a__b`` edge; an edge of a parcel the run lacks is NaN (imputed inside each training
    fold downstream). Runs of one participant are averaged."""
    upper = np.triu_indices(len(parcels), k=1)
    columns = [f"{parcels[i]}__{parcels[j]}" for i, j in zip(*upper, strict=True)]
    rows = []
    for path in relmat_files:
        matrix = pd.read_csv(path, sep="\t", index_col=0)
        matrix.index, matrix.columns = matrix.index.astype(str), matrix.columns.astype(str)
        values = matrix.reindex(index=parcels, columns=parcels).to_numpy()[upper]
        rows.append(np.arctanh(np.clip(values, -0.999999, 0.999999)))
    frame = pd.DataFrame(rows, columns=columns)
    frame.insert(0, "participant_id", participant_ids)
    return frame.groupby("participant_id", sort=True).mean().reset_index()


def mean_connectivity(edges: pd.DataFrame, parcels: list[str]) -> np.ndarray:
    """Group-mean matrix (parcels x parcels) of an :func:`edge_table`: the mean Fisher z of
    each edge over the participants that have it, back to r; 1 on the diagonal."""
    matrix = np.eye(len(parcels))
    upper = np.triu_indices(len(parcels), k=1)
    z = edges.drop(columns="participant_id").to_numpy(dtype=float)
    with np.errstate(all="ignore"):  # an edge nobody has stays NaN
        matrix[upper] = np.tanh(np.nanmean(z, axis=0)) if len(z) else np.nan
    matrix.T[upper] = matrix[upper]
    return matrix


def covariance_table(timeseries_files: list[str], participant_ids: list[str],
                     parcels: list[str]) -> pd.DataFrame:
    """Per-participant Ledoit-Wolf covariance of the z-scored parcel series (SPD, so a
    correlation-like matrix even with fewer volumes than parcels), one column per upper-
    triangle entry ``cov__<a>__<b>`` of ``parcels`` (diagonal included); runs of one
    participant averaged.

    A parcel without signal in a run enters that run's matrix as independent unit-variance
    noise (1 on the diagonal, 0 elsewhere): the matrix stays SPD and nothing is fitted across
    participants. The tangent-space projection (Varoquaux et al. 2010; Abraham et al. 2017)
    is fitted downstream, inside each training fold (``predict.TangentSpaceFeatures``).
    """
    measure = ConnectivityMeasure(cov_estimator=LedoitWolf(store_precision=False),
                                  kind="covariance", standardize="zscore_sample")
    upper = np.triu_indices(len(parcels))
    rows = []
    for path in timeseries_files:
        series = pd.read_csv(path, sep="\t")
        series.columns = series.columns.astype(str)
        varies = dict(zip(series.columns, np.ptp(series.to_numpy(dtype=float), axis=0) > 0,
                          strict=True))
        present = [i for i, p in enumerate(parcels) if p in series and varies[p]]
        full = np.eye(len(parcels))
        full[np.ix_(present, present)] = measure.fit_transform(
            [series[[parcels[i] for i in present]].to_numpy(dtype=float)])[0]
        rows.append(full[upper])
    frame = pd.DataFrame(rows, columns=[f"cov__{parcels[i]}__{parcels[j]}"
                                        for i, j in zip(*upper, strict=True)])
    frame.insert(0, "participant_id", participant_ids)
    return frame.groupby("participant_id", sort=True).mean().reset_index()


def stack_crops(timeseries_files: list[str], recordings: list[str], length: int,
                step: int, out_array: str, out_table: str, parcels: list[str]) -> None:
    """Overlapping crops of every run's parcel series, shape (n_crops, n_parcels, length),
    over ``parcels`` (a parcel a run lacks is 0, its z-scored mean); the table names each
    crop's participant, run (``recording``, its key) and onset.

    The array is written to disk one run at a time (a memory-mapped ``.npy``): memory holds
    one run's series, whatever the cohort's size.
    """
    starts = {}
    for path in timeseries_files:
        n_volumes = len(pd.read_csv(path, sep="\t", usecols=[0]))
        starts[path] = range(0, n_volumes - length + 1, step)
        if not starts[path]:
            raise ValueError(f"{path}: {n_volumes} volumes kept, fewer than "
                             f"fmri.window_volumes={length}. Lower it.")
    rows, filled = [], 0
    with atomic_output(out_array) as temporary:
        store = np.lib.format.open_memmap(
            temporary, mode="w+", dtype=np.float32,
            shape=(sum(map(len, starts.values())), len(parcels), length))
        for path, recording in zip(timeseries_files, recordings, strict=True):
            participant = recording.split("_")[0]
            series = pd.read_csv(path, sep="\t")
            series.columns = series.columns.astype(str)
            series = series.reindex(columns=parcels, fill_value=0.0).to_numpy(dtype=np.float32).T
            for window, start in enumerate(starts[path]):
                store[filled] = series[:, start:start + length]
                filled += 1
                rows.append({"participant_id": participant, "recording": recording,
                             "window": window, "onset_vol": start})
        store.flush()
        del store
    with atomic_output(out_table) as temporary:
        pd.DataFrame(rows).to_csv(temporary, sep="\t", index=False)
    write_sidecar(out_array, sources=timeseries_files, window_volumes=length, step=step)
