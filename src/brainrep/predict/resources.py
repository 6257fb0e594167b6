"""The memory a prediction job asks its scheduler for (Snakemake's ``mem_mb``), from the
shapes of its feature tables: a cluster gets the right request the first time instead of a
job killed for memory and retried (no scikit-learn here: the workflow's main process imports
it)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from brainrep.io import table_shape

#: MiB (2^20 bytes) of the job besides its tables (Python, pandas, scikit-learn, pyarrow,
#: pyriemann)
BASE_MIB = 600
#: copies of the largest table alive at the job's peak with the ridge (measured; the table
#: itself waits on disk): the training fold's design (its tangent vectors written over it),
#: the test rows, and what chunked work leaves in the heap. A table embedded per fold stays
#: in memory, with its designs, but has the encoder's few columns: not the largest one.
TABLE_COPIES = 2.0
#: copies added, counted and not measured: the nuisance block appended and the regression's
#: copies (``deconfound``, ``combat``); another model's inner folds and scaled copies
#: (``logistic_regression``, ``linear_svm``: liblinear's copy of the design)
NUISANCE_TABLE_COPIES = 2.6
OTHER_MODEL_TABLE_COPIES = 2.6
#: MiB of each joblib worker that refits permuted labels, and the copies of the largest
#: table it adds (the training design it maps, and its own standardized copy)
WORKER_MIB = 245
WORKER_TABLE_COPIES = 1.6
#: n x n matrices of a process's leave-one-out ridge while it has fewer training rows n than
#: features (the Gram matrix, its eigenvectors and their squares, eigh's workspace; p x p in
#: the other case), counted per table with n and p its rows and columns
GRAM_COPIES = 4
#: the request over the fitted peak
MARGIN = 1.25


def memory_mb(tables: Iterable[str | Path], *, n_jobs: int = 1, permutations: bool = True,
              model: str = "ridge", nuisance: bool = False) -> int:
    """The memory request (MB, 10^6 bytes, as Snakemake's ``mem_mb``; rounded up) of
    :func:`~brainrep.predict.predict_target` on the feature ``tables`` (paths), with
    ``n_jobs`` worker processes for the label permutations (none without ``permutations``),
    ``model`` (``downstream.model``) and, with ``nuisance``, confounds regressed out or ComBat:
    the peak resident memory of the table that needs most (the job holds one at a time),
    times :data:`MARGIN`.

    Fitted to ``benchmarks/predict_memory.py`` (the peak of the job's process tree on the
    replicated ABIDE tables of ``benchmarks/scaling.py``, 100 and 1,000 participants x 20,100
    tangent features, ridge without deconfounding or ComBat, without permutations and with
    two workers): the memory grows with a table's size (rows x columns x 8 bytes), about
    :data:`TABLE_COPIES` times it in the job and :data:`WORKER_TABLE_COPIES` times in each
    worker. Counted and not measured: the square term (:data:`GRAM_COPIES` matrices of the
    smaller of the table's rows and columns) and the copies of :data:`NUISANCE_TABLE_COPIES`
    and :data:`OTHER_MODEL_TABLE_COPIES`. A table not yet written (or unreadable) counts as
    empty: Snakemake evaluates the request again when the job is about to start, its inputs
    then written."""
    workers = n_jobs if permutations else 0
    copies = (TABLE_COPIES + NUISANCE_TABLE_COPIES * nuisance
              + OTHER_MODEL_TABLE_COPIES * (model != "ridge"))
    largest = 0.0  # MiB the table that needs most adds to the job and its workers
    for path in tables:
        try:
            rows, columns = table_shape(path)
        except (OSError, ValueError):  # not written yet, or cut short: the job reports it
            rows = columns = 0
        table_mib = rows * columns * 8 / 2**20
        square_mib = GRAM_COPIES * min(rows, columns) ** 2 * 8 / 2**20
        largest = max(largest, copies * table_mib + square_mib
                      + workers * (WORKER_TABLE_COPIES * table_mib + square_mib))
    peak = BASE_MIB + workers * WORKER_MIB + largest
    return int(-(-MARGIN * peak * 2**20 // 10**6))
