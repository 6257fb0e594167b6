"""Tasks of one job in worker processes (brainrep.workers.run_tasks)."""

import os
import threading
import time
from pathlib import Path

import pytest
from joblib import delayed

from brainrep.exclusions import RecordingExcluded
from brainrep.workers import run_tasks


def write_after(path: str, seconds: float) -> int:
    """Write this process's id to ``path`` after ``seconds``; return it."""
    time.sleep(seconds)
    Path(path).write_text(str(os.getpid()))
    return os.getpid()


def fail(error: Exception) -> None:
    raise error


class Unpicklable(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.lock = threading.Lock()


def fail_unpicklably(message: str) -> None:
    raise Unpicklable(message)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_results_come_in_order_and_a_failure_waits_for_the_other_tasks(tmp_path, n_jobs):
    """The results in the tasks' order (in worker processes when n_jobs is 2); a task that
    fails does not stop the others halfway: they finish their outputs, and then its own
    error is raised, with its type and fields."""
    first, second = run_tasks([delayed(write_after)(str(tmp_path / "a"), 0.5),
                               delayed(write_after)(str(tmp_path / "b"), 0.0)], n_jobs)
    assert [first, second] == [int((tmp_path / name).read_text()) for name in "ab"]
    assert (first != os.getpid()) == (n_jobs == 2)
    excluded = RecordingExcluded("sub-01_bold.tsv", "unreadable", "cannot read it")
    with pytest.raises(RecordingExcluded, match="cannot read it") as raised:
        run_tasks([delayed(fail)(excluded), delayed(write_after)(str(tmp_path / "c"), 1.0)],
                  n_jobs)
    assert (raised.value.path, raised.value.reason) == ("sub-01_bold.tsv", "unreadable")
    assert (tmp_path / "c").exists()  # finished, not killed, when the other failed


def test_every_failure_is_reported_and_an_unpicklable_error_by_its_name():
    """Both workers fail: the first error is raised, the second named in a note; an error
    that cannot travel back from a worker becomes a RuntimeError naming it."""
    with pytest.raises(ValueError, match="first") as raised:
        run_tasks([delayed(fail)(ValueError("first")), delayed(fail)(KeyError("second"))], 2)
    assert any("KeyError: 'second'" in note for note in raised.value.__notes__)
    with pytest.raises(RuntimeError, match="Unpicklable: holds a lock"):
        run_tasks([delayed(fail_unpicklably)("holds a lock"),
                   delayed(write_after)(os.devnull, 0.0)], 2)
