"""Independent tasks of one job in worker processes (joblib's loky)."""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from joblib import Parallel, delayed, parallel_config

from brainrep.io import stop_with_parent

logger = logging.getLogger(__name__)

#: ``joblib.delayed(function)(*args, **kwargs)``: (function, args, kwargs)
Task = tuple[Callable[..., Any], tuple, dict]


@dataclass
class _Failed:
    error: Exception
    trace: str


def _outcome(function: Callable[..., Any], args: tuple, kwargs: dict, job: int) -> Any:
    if os.getpid() != job:
        stop_with_parent()  # a worker does not outlive its job
    try:
        return function(*args, **kwargs)
    except Exception as error:  # raised by the job once every task has ended
        return _Failed(error, traceback.format_exc())


def run_tasks(tasks: Sequence[Task], n_jobs: int) -> list:
    """The results of ``tasks``, in order, computed in up to ``n_jobs`` worker processes of
    one BLAS thread each (with ``n_jobs=1``, in this process, one after the other: the same
    numbers). Each worker stops with the job's process. A task's error is raised (its
    traceback logged) only once every task has ended, so that no task is killed halfway
    through writing its outputs."""
    with parallel_config(backend="loky", inner_max_num_threads=1):
        outcomes = Parallel(n_jobs=max(1, min(n_jobs, len(tasks))))(
            delayed(_outcome)(function, args, kwargs, os.getpid())
            for function, args, kwargs in tasks)
    for outcome in outcomes:
        if isinstance(outcome, _Failed):
            logger.error("a task failed:\n%s", outcome.trace)
            raise outcome.error
    return outcomes
