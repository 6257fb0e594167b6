"""Feature tables whose values wait on disk while the harness holds a fold's design."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from brainrep.predict.models import FOLD_COLUMN
from brainrep.storage import RowStore


class TableOnDisk:
    """A feature table (:func:`~brainrep.io.read_features`, without an ``encoder_fold``
    column) whose values are rows of a :class:`~brainrep.storage.RowStore` (``$TMPDIR``), read
    back a fold's rows at a time through :class:`RowsOnDisk`: a prediction job holds a
    fold's design, not the table besides it. Reads as the table where the harness
    reads more than its values (``columns``, ``"participant_id"``, ``in``). A context
    manager, or :meth:`close`, removes the file at once."""

    def __init__(self, table: pd.DataFrame):
        if FOLD_COLUMN in table:
            raise ValueError(f"a table embedded per fold ({FOLD_COLUMN!r}) stays in memory")
        self.columns = table.columns
        self._ids = table["participant_id"].copy()
        values = table.drop(columns="participant_id").to_numpy(dtype=float)
        self.missing = np.isnan(values).any(axis=1)  # per row
        self.rows = RowStore(values.shape[1])
        try:
            for row in values:
                self.rows.append(row)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> TableOnDisk:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __contains__(self, column: str) -> bool:
        return column in self.columns

    def __getitem__(self, column: str) -> pd.Series:
        if column != "participant_id":
            raise KeyError(f"{column!r}: a table on disk gives its participant_id column only")
        return self._ids

    def close(self) -> None:
        """Remove the rows' file."""
        self.rows.close()


@dataclass
class RowsOnDisk:
    """The design matrix of a :class:`TableOnDisk` for some participants: ``X[rows]`` reads
    those rows from disk, the same array as the in-memory design's ``X[rows]`` (a fresh
    one), with the ``extra`` columns (a nuisance block, one row per participant) appended."""

    store: RowStore
    order: np.ndarray  # the store's row of each participant
    missing: np.ndarray  # whether each participant's row has a NaN
    extra: np.ndarray | None = None

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        values = self.store.read(self.order[rows])
        return values if self.extra is None else np.hstack([values, self.extra[rows]])
