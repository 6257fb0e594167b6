"""Dry-run (DAG build) time and job count against the number of participants.

Run from the repository root: ``python benchmarks/dag_scaling.py [--subjects 40 160 640]``.
Prints one row per size, with the time per participant relative to the smallest size
(a ratio near 1 means the DAG build scales linearly).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time


def dry_run(n_subjects: int) -> tuple[float, int]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as config:
        config.write(f"name: bench{n_subjects}\ndemo: {{n_subjects: {n_subjects}}}\n")
        config.flush()
        tic = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "rules",
                              "--configfile", config.name],
                             capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - tic
    total = int(re.search(r"^total\s+(\d+)", run.stdout, re.MULTILINE).group(1))
    return seconds, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, nargs="+", default=[40, 160, 640])
    args = parser.parse_args()
    rows = [(n, *dry_run(n)) for n in args.subjects]
    base = rows[0][1] / rows[0][0]
    print(f"{'participants':>12} {'jobs':>6} {'dry-run s':>10} {'ms/participant':>15} "
          f"{'ratio':>6}")
    for n, seconds, jobs in rows:
        print(f"{n:>12} {jobs:>6} {seconds:>10.2f} {1000 * seconds / n:>15.1f} "
              f"{(seconds / n) / base:>6.2f}")


if __name__ == "__main__":
    main()
