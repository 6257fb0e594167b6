"""The fMRI group stage: which runs enter, parcel coverage, edge and covariance tables and
QC-FC (the window store is :mod:`brainrep.fmri.windows`)."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
from joblib import delayed
from nilearn.connectome import ConnectivityMeasure
from sklearn.covariance import LedoitWolf

from brainrep.exclusions import exclusion, ledger
from brainrep.fmri.matrices import constant_columns
from brainrep.fmri.settings import GroupSettings, QcThresholds
from brainrep.fmri.windows import read_series, stack_crops
from brainrep.io import (
    collect_qc,
    write_tsv,
    write_wide_parquet,
)
from brainrep.storage import RowStore
from brainrep.workers import run_tasks


def flag_exclusions(qc: pd.DataFrame, thresholds: QcThresholds) -> pd.DataFrame:
    """Add ``excluded`` and ``exclusion_reason`` to a per-run QC table, by the
    ``thresholds`` (None disables one); a metric the table lacks (e.g. motion for
    parcellated inputs) excludes no one.
    """
    checks = (("mean_fd_mm", "max_mean_fd_mm", ">"),
              ("fraction_censored", "max_fraction_censored", ">"),
              ("tsnr", "min_tsnr", "<"),
              ("fraction_empty_parcels", "max_fraction_empty_parcels", ">"))
    reasons = pd.Series([[] for _ in range(len(qc))], index=qc.index)
    for column, key, side in checks:
        limit = getattr(thresholds, key)
        if limit is None or column not in qc:
            continue
        values = pd.to_numeric(qc[column], errors="coerce")
        bad = values > limit if side == ">" else values < limit
        for i in qc.index[bad]:
            reasons[i].append(f"{column} {values[i]:.3g} {side} {limit}")
    return qc.assign(excluded=[bool(r) for r in reasons],
                     exclusion_reason=["; ".join(r) or "n/a" for r in reasons])


def select_runs(relmats: list[str], keys: list[str], *, settings: GroupSettings
                ) -> tuple[pd.DataFrame, pd.DataFrame, list[int]]:
    """Decide which runs enter the group stage.

    ``relmats`` are the per-run outputs (their sidecars hold the QC record, or the exclusion
    of a run that failed in a known way) and ``keys`` their recording keys. Returns the QC
    table of the processed runs with :func:`flag_exclusions`' columns (the settings' ``qc``
    thresholds; ``excluded`` also marks runs with fewer kept volumes than one
    ``window_volumes`` crop), the exclusion ledger of every run and the indices of the runs
    kept.
    """
    window_volumes = settings.window_volumes
    runs = ledger(keys, relmats, "func")
    processed = [i for i, path in enumerate(relmats) if exclusion(path) is None]
    qc = collect_qc([relmats[i] for i in processed], [keys[i].split("_")[0] for i in processed])
    if processed:  # over the parcels with signal in some run (not those outside every FOV)
        present = [set(relmat_labels(relmats[i])) for i in processed]
        union = set().union(*present)
        qc["fraction_empty_parcels"] = [1 - len(p) / max(len(union), 1) for p in present]
    qc = flag_exclusions(qc, settings.qc)
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
    with open(relmat_file, newline="", encoding="utf-8") as table:  # as pandas wrote it
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


def edge_columns(parcels: list[str]) -> list[str]:
    """The ``a__b`` names of the edges of ``parcels`` (upper triangle, row by row)."""
    upper = np.triu_indices(len(parcels), k=1)
    return [f"{parcels[i]}__{parcels[j]}" for i, j in zip(*upper, strict=True)]


def edge_rows(relmat_files: list[str], parcels: list[str]) -> RowStore:
    """Fisher-z upper triangle of each run's matrix over ``parcels`` (:func:`edge_columns`),
    one row per run in a :class:`~brainrep.storage.RowStore`; an edge of a parcel the run lacks is
    NaN (imputed inside each training fold downstream)."""
    upper = np.triu_indices(len(parcels), k=1)
    rows = RowStore(len(upper[0]))
    for path in relmat_files:
        matrix = pd.read_csv(path, sep="\t", index_col=0)
        matrix.index, matrix.columns = matrix.index.astype(str), matrix.columns.astype(str)
        values = matrix.reindex(index=parcels, columns=parcels).to_numpy()[upper]
        rows.append(np.arctanh(np.clip(values, -0.999999, 0.999999)))
    return rows


def edge_table(relmat_files: list[str], participant_ids: list[str],
               parcels: list[str]) -> pd.DataFrame:
    """:func:`edge_rows` as one table, one row per participant (its runs averaged)."""
    with edge_rows(relmat_files, parcels) as rows:
        return participant_means(rows.read(range(len(rows))), participant_ids,
                                 edge_columns(parcels))


def write_edge_table(relmat_files: list[str], participant_ids: list[str], parcels: list[str],
                     path: str, *, participants_per_chunk: int,
                     motion: pd.Series | None = None) -> tuple[np.ndarray, pd.DataFrame | None]:
    """:func:`edge_table` written to ``path`` (TSV, ``n/a`` where missing), with its
    :func:`mean_connectivity` and, given ``motion``, its :func:`qc_fc`: the same bytes and
    numbers as from the whole table, holding ``participants_per_chunk`` participants' rows
    at a time (the rest wait on disk; QC-FC reads them back in blocks of columns holding as
    many values)."""
    columns = edge_columns(parcels)
    total, counts, ids = np.zeros(len(columns)), np.zeros(len(columns), dtype=int), []
    with edge_rows(relmat_files, parcels) as runs, RowStore(len(columns)) as means:
        chunks = participant_chunks(runs, participant_ids, columns, participants_per_chunk)
        if motion is not None:  # QC-FC reads the table back by columns
            chunks = stored(chunks, means, ids)
        for k, chunk in enumerate(chunks):
            write_tsv(chunk, path, na_rep="n/a", append=k > 0)
            for row in chunk.iloc[:, 1:].to_numpy():
                # row by row, in row order: np.nansum(table, axis=0)'s sums, bit for bit
                total += np.where(np.isnan(row), 0.0, row)
                counts += np.isfinite(row)
        qcfc = None
        if motion is not None:
            width = max(1, participants_per_chunk * len(columns) // max(len(ids), 1))
            qcfc = pd.concat([qc_fc(pd.DataFrame(means.read_columns(start, start + width),
                                                 columns=columns[start:start + width])
                                    .assign(participant_id=ids), motion)
                              for start in range(0, len(columns) or 1, width)],
                             ignore_index=True)
    return _mean_matrix(total, counts, parcels), qcfc


def participant_chunks(rows: RowStore, participant_ids: list[str], columns: list[str],
                       participants_per_chunk: int) -> Iterator[pd.DataFrame]:
    """:func:`participant_means` of ``rows`` (one per run, of ``participant_ids``),
    ``participants_per_chunk`` participants at a time in participant order: the chunks
    stacked are the whole table's rows, number for number (a participant's mean depends on
    its own runs only), and memory holds one chunk's runs. No participant: one empty
    table."""
    if len(participant_ids) != len(rows):
        raise ValueError(f"{len(participant_ids)} participant ids for {len(rows)} runs")
    if participants_per_chunk < 1:
        raise ValueError(f"participants_per_chunk must be at least 1, got "
                         f"{participants_per_chunk}")
    ids = np.asarray(participant_ids, dtype=object)
    order = np.argsort(ids, kind="stable")  # each participant's runs in their order
    ordered = ids[order]
    firsts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ids) else []
    bounds = [*firsts[::participants_per_chunk], len(ids)]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        yield participant_means(rows.read(order[start:stop]), list(ordered[start:stop]),
                                columns)
    if not len(ids):
        yield participant_means(np.empty((0, len(columns))), [], columns)


def stored(chunks: Iterable[pd.DataFrame], store: RowStore,
           ids: list[str]) -> Iterator[pd.DataFrame]:
    """Each of ``chunks`` (tables of ``participant_id`` and float columns), once its rows are
    appended to ``store`` and its participants to ``ids``."""
    for chunk in chunks:
        for row in chunk.iloc[:, 1:].to_numpy():
            store.append(row)
        ids.extend(chunk["participant_id"])
        yield chunk


def participant_means(rows: np.ndarray, participant_ids: list[str],
                      columns: list[str]) -> pd.DataFrame:
    """One row per participant (sorted by ``participant_id``, then ``columns``): the mean of
    its runs' ``rows`` (shape (n_runs, n_columns)), NaN skipped (NaN where no run has a
    value): its runs summed in their order, then divided by their number. With one run per
    participant, the rows as they are (no copy when the runs come sorted). Each
    participant's mean depends on its runs alone, so chunks of participants give the same
    numbers (pandas' groupby mean does not promise that: it sums by ``np.add.reduceat`` or
    with Kahan's compensation depending on the whole table); for one or two runs the two
    agree."""
    ids = pd.Series(participant_ids, dtype=object)
    if len(ids) != len(rows):
        raise ValueError(f"{len(ids)} participant ids for {len(rows)} runs")
    if ids.isna().any():
        raise ValueError("a run without a participant id; every run needs one")
    order = ids.argsort(kind="stable").to_numpy()
    if ids.is_unique:
        if not ids.is_monotonic_increasing:
            rows, ids = rows[order], ids.iloc[order]
        rows += 0.0  # -0.0 becomes 0.0, as in a sum from 0
    else:
        ordered = ids.to_numpy()[order]
        firsts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        means = np.empty((len(firsts), rows.shape[1]))
        for mean, start, stop in zip(means, firsts, [*firsts[1:], len(ordered)], strict=True):
            total, count = np.zeros(rows.shape[1]), np.zeros(rows.shape[1])
            for run in rows[order[start:stop]]:
                present = ~np.isnan(run)
                total += np.where(present, run, 0.0)
                count += present
            with np.errstate(invalid="ignore"):  # 0 / 0: no run has the value
                mean[:] = total / count
        rows, ids = means, pd.Series(ordered[firsts], dtype=object)
    frame = pd.DataFrame(rows, columns=columns, copy=False)
    frame.insert(0, "participant_id", ids.to_numpy())
    return frame


def mean_connectivity(edges: pd.DataFrame, parcels: list[str]) -> np.ndarray:
    """Group-mean matrix (parcels x parcels) of an :func:`edge_table`: the mean Fisher z of
    each edge over the participants that have it, back to r; 1 on the diagonal."""
    z = edges.drop(columns="participant_id").to_numpy(dtype=float)
    return _mean_matrix(np.nansum(z, axis=0), np.isfinite(z).sum(axis=0), parcels)


def _mean_matrix(total: np.ndarray, counts: np.ndarray, parcels: list[str]) -> np.ndarray:
    """The parcels x parcels matrix of the edges' mean Fisher z (``total`` / ``counts``)
    back to r, 1 on the diagonal; an edge nobody has is NaN."""
    matrix = np.eye(len(parcels))
    upper = np.triu_indices(len(parcels), k=1)
    with np.errstate(invalid="ignore"):  # 0 / 0 stays NaN
        matrix[upper] = np.tanh(total / counts)
    matrix.T[upper] = matrix[upper]
    return matrix


class CovarianceRows:
    """Per-run Ledoit-Wolf covariances of the z-scored parcel series over ``parcels`` (SPD,
    so a correlation-like matrix even with fewer volumes than parcels), gathered one run at a
    time (:meth:`add`, the run's series as read) into a table of participants
    (:meth:`table`). Holds one row per run: the upper triangle of ``parcels``, diagonal
    included.

    A parcel without signal in a run enters that run's matrix as independent unit-variance
    noise (1 on the diagonal, 0 elsewhere): the matrix stays SPD and nothing is fitted across
    participants. The tangent-space projection (Varoquaux et al. 2010; Abraham et al. 2017)
    is fitted downstream, inside each training fold (``predict.TangentSpaceFeatures``).
    """

    def __init__(self, parcels: list[str], n_runs: int) -> None:
        self.parcels = parcels
        self.upper = np.triu_indices(len(parcels))
        self.n_runs = n_runs
        self.rows = RowStore(len(self.upper[0]))
        self.measure = ConnectivityMeasure(cov_estimator=LedoitWolf(store_precision=False),
                                           kind="covariance", standardize="zscore_sample")

    def add(self, series: pd.DataFrame) -> None:
        """The next run's covariances; ``series`` (volumes x parcels, columns named by the
        parcels' labels as text) as :func:`~brainrep.fmri.windows.read_series` reads it,
        left unchanged."""
        if len(self.rows) == self.n_runs:
            raise ValueError(f"covariances of more runs than the {self.n_runs} announced")
        varies = dict(zip(series.columns, ~constant_columns(series.to_numpy(dtype=float)),
                          strict=True))
        present = [i for i, p in enumerate(self.parcels) if p in series and varies[p]]
        full = np.eye(len(self.parcels))
        full[np.ix_(present, present)] = self.measure.fit_transform(
            [series[[self.parcels[i] for i in present]].to_numpy(dtype=float)])[0]
        self.rows.append(full[self.upper])

    @property
    def columns(self) -> list[str]:
        """``cov__<a>__<b>`` for each upper-triangle entry, diagonal included."""
        return [f"cov__{self.parcels[i]}__{self.parcels[j]}"
                for i, j in zip(*self.upper, strict=True)]

    def table(self, participant_ids: list[str]) -> pd.DataFrame:
        """One row per participant (its runs averaged, in :meth:`add`'s order of runs), one
        column per upper-triangle entry (:attr:`columns`)."""
        self._check_filled()
        return participant_means(self.rows.read(range(self.n_runs)), participant_ids,
                                 self.columns)

    def write_parquet(self, participant_ids: list[str], path: str, *,
                      participants_per_chunk: int) -> None:
        """:meth:`table` written to ``path`` (Parquet, :func:`~brainrep.io.write_wide_parquet`):
        the participants' means are gathered on disk ``participants_per_chunk`` at a time."""
        self._check_filled()
        ids: list[str] = []
        with RowStore(len(self.columns)) as means:
            for _ in stored(participant_chunks(self.rows, participant_ids, self.columns,
                                               participants_per_chunk), means, ids):
                pass
            write_wide_parquet(means, ids, self.columns, path)

    def _check_filled(self) -> None:
        if len(self.rows) != self.n_runs:
            raise ValueError(f"covariances of {len(self.rows)} runs of {self.n_runs}")


def write_series_tables(timeseries_files: list[str], recordings: list[str],
                        participant_ids: list[str], parcels: list[str], *, out_array: str,
                        out_table: str, out_covariances: str, settings: GroupSettings) -> None:
    """What the group stage makes of the runs' parcel series, each file parsed once: the
    window store (:func:`~brainrep.fmri.windows.stack_crops`: ``out_array``, float32 of shape
    (n_crops, n_parcels, window_volumes), and its table ``out_table``) and the covariance
    table (``out_covariances``, Parquet of :class:`CovarianceRows`, one row per participant,
    ``settings.participants_per_chunk`` participants' means gathered at a time)."""
    covariances = CovarianceRows(parcels, len(timeseries_files))
    with covariances.rows:  # and its temporary file
        stack_crops(timeseries_files, recordings, parcels, out_array, out_table,
                    settings=settings, each_series=covariances.add)
        covariances.write_parquet(participant_ids, out_covariances,
                                  participants_per_chunk=settings.participants_per_chunk)


def write_group_tables(timeseries_files: list[str], relmat_files: list[str],
                       recordings: list[str], parcels: list[str], *, out_array: str,
                       out_table: str, out_covariances: str, out_edges: str,
                       settings: GroupSettings, motion: pd.Series | None = None,
                       n_jobs: int = 1) -> tuple[np.ndarray, pd.DataFrame | None]:
    """The group stage's tables of the kept runs (``recordings``, keys ``sub-<label>_...``):
    :func:`write_series_tables` from their series and :func:`write_edge_table` (to
    ``out_edges``) from their connectivity matrices. The two read different files, so they
    run in up to ``n_jobs`` (2 at most) worker processes (:func:`~brainrep.workers.run_tasks`):
    the same bytes for any ``n_jobs``. Returns :func:`write_edge_table`'s group-mean matrix
    and QC-FC."""
    participants = [key.split("_")[0] for key in recordings]
    _, (mean, qcfc) = run_tasks([
        delayed(write_series_tables)(timeseries_files, recordings, participants, parcels,
                                     out_array=out_array, out_table=out_table,
                                     out_covariances=out_covariances, settings=settings),
        delayed(write_edge_table)(relmat_files, participants, parcels, out_edges,
                                  participants_per_chunk=settings.participants_per_chunk,
                                  motion=motion)], n_jobs)
    return mean, qcfc


def covariance_table(timeseries_files: list[str], participant_ids: list[str],
                     parcels: list[str]) -> pd.DataFrame:
    """:class:`CovarianceRows` of the runs in ``timeseries_files`` (of ``participant_ids``),
    one row per participant."""
    covariances = CovarianceRows(parcels, len(timeseries_files))
    for path in timeseries_files:
        covariances.add(read_series(path))
    return covariances.table(participant_ids)
