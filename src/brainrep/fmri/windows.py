"""The fMRI window store: overlapping crops of every run's parcel series, written one run at a
time."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pandas as pd

from brainrep.fmri.settings import GroupSettings
from brainrep.io import atomic_output, write_sidecar


def read_series(path: str) -> pd.DataFrame:
    """A parcellated time series (volumes x parcels), its parcel labels as text."""
    series = pd.read_csv(path, sep="\t")
    series.columns = series.columns.astype(str)
    return series


def stack_crops(timeseries_files: list[str], recordings: list[str], parcels: list[str],
                out_array: str, out_table: str, *, settings: GroupSettings,
                each_series: Callable[[pd.DataFrame], None] | None = None) -> None:
    """Overlapping crops of every run's parcel series, shape (n_crops, n_parcels, length):
    ``window_volumes`` long every ``window_step`` volumes of the settings, over ``parcels``
    (a parcel a run lacks is 0, its z-scored mean); the table names each crop's participant,
    run (``recording``, its key) and onset.

    The ``.npy`` array is written one run at a time, appended to the file (not memory-mapped:
    the written crops are the page cache's, not this job's memory): memory holds one run's
    series, whatever the cohort's size. ``each_series`` is called with every run's
    series as read (:func:`read_series`), in order, and must not change it: what else needs
    the series (e.g. :meth:`brainrep.fmri.group.CovarianceRows.add`) parses no file again.
    (Each file's volumes are first counted from its first column alone, to size the store.)
    """
    length, step = settings.window_volumes, settings.window_step
    starts = {}
    for path in timeseries_files:
        n_volumes = len(pd.read_csv(path, sep="\t", usecols=[0]))
        starts[path] = range(0, n_volumes - length + 1, step)
        if not starts[path]:
            raise ValueError(f"{path}: {n_volumes} volumes kept, fewer than "
                             f"fmri.window_volumes={length}. Lower it.")
    shape = (sum(map(len, starts.values())), len(parcels), length)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
              "fortran_order": False, "shape": shape}
    rows = []
    with atomic_output(out_array) as temporary, open(temporary, "wb") as store:
        np.lib.format.write_array_header_1_0(store, header)
        for path, recording in zip(timeseries_files, recordings, strict=True):
            participant = recording.split("_")[0]
            series = read_series(path)
            if each_series is not None:
                each_series(series)
            series = np.ascontiguousarray(series.reindex(columns=parcels, fill_value=0.0)
                                          .to_numpy(dtype=np.float32).T)
            if series.shape[1] < starts[path][-1] + length:
                raise ValueError(f"{path}: {series.shape[1]} volumes read, fewer than counted "
                                 "a moment before; it changed while being read. Rerun.")
            np.stack([series[:, start:start + length] for start in starts[path]]).tofile(store)
            rows.extend({"participant_id": participant, "recording": recording,
                         "window": window, "onset_vol": start}
                        for window, start in enumerate(starts[path]))
        store.flush()
        os.fsync(store.fileno())  # on disk before it is renamed into place
    with atomic_output(out_table) as temporary:
        pd.DataFrame(rows).to_csv(temporary, sep="\t", index=False)
    write_sidecar(out_array, sources=timeseries_files, window_volumes=length, step=step,
                  channels=list(parcels))
