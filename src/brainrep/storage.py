"""Arrays and rows that wait on disk, not in memory, in the temporary folder (``$TMPDIR``,
which Snakemake's ``tmpdir`` resource sets per job): the scratch stores of the group stages,
the prediction harness's feature tables and the SSL stage's windows."""

from __future__ import annotations

import os
import tempfile
import threading

import numpy as np


def scratch_array(shape: tuple[int, ...], dtype) -> np.ndarray:
    """A writable array of ``shape`` on disk, not in memory: a memory-mapped ``.npy`` in the
    temporary folder (``$TMPDIR``, which Snakemake's ``tmpdir`` resource sets per job), removed
    from the folder at once and freed when the last mapping of it goes."""
    handle, path = tempfile.mkstemp(suffix=".npy", prefix="brainrep-")
    os.close(handle)
    try:
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    finally:
        os.unlink(path)


def on_disk(arrays: list[np.ndarray], rows: np.ndarray | None = None,
            chunk: int = 4096) -> np.ndarray:
    """``np.concatenate(arrays)[rows]`` (``rows``: a boolean mask or indices, None: all) as a
    :func:`scratch_array`, copied ``chunk`` rows at a time, so memory-mapped stores are
    selected or joined without holding them in memory."""
    sizes = np.cumsum([0] + [len(a) for a in arrays])
    selected = np.arange(sizes[-1]) if rows is None else np.arange(sizes[-1])[rows]
    out = scratch_array((len(selected), *arrays[0].shape[1:]), np.result_type(*arrays))
    for start in range(0, len(selected), chunk):
        part = selected[start:start + chunk]
        which = np.searchsorted(sizes, part, side="right") - 1
        for k in np.unique(which):
            out[start + np.flatnonzero(which == k)] = arrays[k][part[which == k] - sizes[k]]
    return out


class RowStore:
    """Float64 rows of ``n_columns`` values in an unlinked temporary file (in ``$TMPDIR``),
    written and read with ``pwrite``/``pread``: the rows written are the kernel's page cache,
    not this process's memory (a memory map would count every page it touched in the
    process's resident memory; where ``$TMPDIR`` is a RAM disk, the file is memory again).
    Group stages gather one row per run here and read back a chunk of rows, or of columns,
    at a time. Safe to write and read from several threads; a context manager, or
    :meth:`close`, frees the file at once."""

    def __init__(self, n_columns: int):
        self.n_columns = n_columns
        self._file = tempfile.TemporaryFile(prefix="brainrep-rows-")
        self._n_rows = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Rows written (the highest index written, plus one)."""
        return self._n_rows

    def __enter__(self) -> RowStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Remove the file (its space is freed)."""
        self._file.close()

    def write(self, index: int, values: np.ndarray) -> None:
        """Row ``index`` (``n_columns`` values)."""
        row = np.ascontiguousarray(values, dtype=float)
        if row.shape != (self.n_columns,):
            raise ValueError(f"a row of {self.n_columns} values, got shape {row.shape}")
        if os.pwrite(self._file.fileno(), row.tobytes(), index * row.nbytes) != row.nbytes:
            raise OSError(f"row {index} was not written whole (is {self._file.name!r}'s "
                          "disk full? Point $TMPDIR at a larger one)")
        with self._lock:
            self._n_rows = max(self._n_rows, index + 1)

    def append(self, values: np.ndarray) -> None:
        """The next row."""
        with self._lock:
            index, self._n_rows = self._n_rows, self._n_rows + 1
        self.write(index, values)

    def read(self, indices) -> np.ndarray:
        """Rows ``indices`` in that order, shape (len(indices), n_columns)."""
        return self.read_block(indices, 0, self.n_columns)

    def read_columns(self, start: int, stop: int) -> np.ndarray:
        """Columns ``start:stop`` of every row (``stop`` at most ``n_columns``), shape
        (len(self), min(stop, n_columns) - start)."""
        return self.read_block(range(len(self)), start, min(stop, self.n_columns))

    def read_block(self, indices, start: int, stop: int) -> np.ndarray:
        """Columns ``start:stop`` of rows ``indices``, shape (len(indices), stop - start)."""
        if not 0 <= start <= stop <= self.n_columns:
            raise ValueError(f"columns {start}:{stop} of rows of {self.n_columns}")
        out = np.empty((len(indices), stop - start))
        width, row_bytes = out.shape[1] * 8, self.n_columns * 8
        for position, index in enumerate(indices):
            data = os.pread(self._file.fileno(), width, index * row_bytes + start * 8)
            if len(data) != width:
                raise ValueError(f"row {index} was never written ({len(self)} rows)")
            out[position] = np.frombuffer(data, dtype=float)
        return out
