"""Independent tasks of one job in worker processes (joblib's loky)."""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from joblib import Parallel, delayed, parallel_config

from brainrep.io import stop_with_parent

#: ``joblib.delayed(function)(*args, **kwargs)``: (function, args, kwargs)
Task = tuple[Callable[..., Any], tuple, dict]


@dataclass(frozen=True)
class _Failed:
    error: Exception


def _outcome(function: Callable[..., Any], args: tuple, kwargs: dict, job: int) -> Any:
    """``function(*args, **kwargs)``, or its error wrapped; in a worker (not the ``job``
    process), the worker first asks to stop with the job, and an error carries the worker's
    traceback as a note, or is replaced by a RuntimeError naming it if it cannot be pickled
    back to the job."""
    in_worker = os.getpid() != job
    if in_worker:
        stop_with_parent()  # a worker does not outlive its job
    try:
        return function(*args, **kwargs)
    except Exception as error:  # raised by the job once every task has ended
        if not in_worker:
            return _Failed(error)
        error.add_note(f"in a worker process:\n{traceback.format_exc()}")
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:
            error = RuntimeError(f"{type(error).__name__}: {error}\n{error.__notes__[-1]}")
        return _Failed(error)


def run_tasks(tasks: Sequence[Task], n_jobs: int) -> list[Any]:
    """The results of ``tasks``, in order, computed in up to ``n_jobs`` worker processes of
    one BLAS thread each (with ``n_jobs=1``, in this process, one after the other: the same
    numbers). Each worker stops with the job's process. A task's Python error is raised
    (the first, with every other failure as a note) only once every task has ended, so that
    no task is killed halfway through writing its outputs; a worker that dies (out of
    memory, a signal) still makes joblib stop the others."""
    with parallel_config(backend="loky", inner_max_num_threads=1):
        outcomes = Parallel(n_jobs=max(1, min(n_jobs, len(tasks))))(
            delayed(_outcome)(function, args, kwargs, os.getpid())
            for function, args, kwargs in tasks)
    failures = [outcome.error for outcome in outcomes if isinstance(outcome, _Failed)]
    if failures:
        for other in failures[1:]:
            failures[0].add_note(f"another task failed too: {type(other).__name__}: {other}")
        raise failures[0]
    return outcomes
