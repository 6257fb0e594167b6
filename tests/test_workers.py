"""Tasks of one job in worker processes (brainrep.workers.run_tasks)."""

import os
from pathlib import Path

import pytest
from joblib import delayed

from brainrep.workers import run_tasks


def write_after(path: str, seconds: float) -> int:
    """Write this process's id to ``path`` after ``seconds``; return it."""
    import time

    time.sleep(seconds)
    Path(path).write_text(str(os.getpid()))
    return os.getpid()


def fail(message: str) -> None:
    raise ValueError(message)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_results_come_in_order_and_a_failure_waits_for_the_other_tasks(tmp_path, n_jobs):
    """The results in the tasks' order (in worker processes when n_jobs is 2); a task that
    fails does not stop the others halfway: they finish their outputs, and then its own
    error is raised."""
    first, second = run_tasks([delayed(write_after)(str(tmp_path / "a"), 0.5),
                               delayed(write_after)(str(tmp_path / "b"), 0.0)], n_jobs)
    assert [first, second] == [int((tmp_path / name).read_text()) for name in "ab"]
    assert (first != os.getpid()) == (n_jobs == 2)
    with pytest.raises(ValueError, match="the first task's error"):
        run_tasks([delayed(fail)("the first task's error"),
                   delayed(write_after)(str(tmp_path / "c"), 1.0)], n_jobs)
    assert (tmp_path / "c").exists()  # finished, not killed, when the other failed
