"""The prediction job's peak memory against what it asks its scheduler for.

Run from the repository root after ``benchmarks/scaling.py`` (which leaves
``results/scaling<N>``): ``python benchmarks/predict_memory.py results/scaling100
results/scaling1000 [--permutations 0 3] [--jobs 2]``.

For each results folder and permutation count, ``predict_target`` runs in a fresh process on
that run's feature tables (ASD vs TD, 100 bootstraps, the full label set only; permutation
refits in ``--jobs`` worker processes); the resident memory of its process tree (the job and
its joblib workers) is summed every 10 ms. Prints the peak beside
``brainrep.predict.memory_mb`` (the rule's ``mem_mb``) and their ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil


def measure(results: Path, permutations: int, n_jobs: int) -> None:
    """Runs predict_target on ``results``' tables; prints its peak (MiB) and seconds."""
    peak = [0]

    def sample() -> None:
        me = psutil.Process()
        while True:
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total)
            time.sleep(0.01)

    threading.Thread(target=sample, daemon=True).start()
    from brainrep.bids import read_participants
    from brainrep.predict import PredictionSettings, predict_target

    group = results / "group"
    settings = PredictionSettings(positive_class="ASD", n_permutations=permutations,
                                  n_bootstrap=100, label_fractions=(1.0,), label_repeats=1)
    tables = {path.stem: path for path in sorted((group / "features").glob("*"))}
    tic = time.perf_counter()
    predict_target(tables, read_participants(group / "index/participants.tsv"), "diagnosis",
                   settings=settings, folds=pd.read_csv(group / "predict/folds.tsv", sep="\t"),
                   n_jobs=n_jobs)
    time.sleep(0.05)
    print(f"{peak[0] / 2**20:.0f} {time.perf_counter() - tic:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--permutations", type=int, nargs="+", default=[0, 3])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--measure", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.results[0], *args.measure)
        return
    from brainrep.predict import memory_mb

    print(f"{'results':<28}{'permutations':>13}{'peak MiB':>10}{'s':>6}{'request MB':>12}"
          f"{'request / peak':>16}")
    for results in args.results:
        for permutations in args.permutations:
            run = subprocess.run([sys.executable, __file__, str(results), "--measure",
                                  str(permutations), str(args.jobs)], check=True,
                                 capture_output=True, text=True)
            peak, seconds = map(float, run.stdout.split()[-2:])
            request = memory_mb((results / "group/features").glob("*"), n_jobs=args.jobs,
                                permutations=permutations > 0)
            print(f"{str(results):<28}{permutations:>13}{peak:>10.0f}{seconds:>6.0f}"
                  f"{request:>12}{request * 10**6 / 2**20 / peak:>16.2f}")


if __name__ == "__main__":
    main()
