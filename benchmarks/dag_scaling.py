"""Dry-run (DAG build) time and job count against the number of participants.

Run from the repository root: ``python benchmarks/dag_scaling.py [--layout demo|eeg|timeseries]
[--subjects 100 1000 10000]``.

* ``demo``: the simulated demo (EEG + BOLD; its files are planned, not written);
* ``eeg``: a synthetic BIDS tree with the real layout and empty files
  (``sub-*/eeg/sub-*_task-rest_eeg.{vhdr,vmrk,eeg}``), one recording per participant;
* ``timeseries``: XCP-D-style parcellated series, empty files
  (``sub-*/func/*_seg-CC200_stat-mean_timeseries.tsv``), as ABIDE in ``config/examples/abide.yaml``.

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
from pathlib import Path

import yaml


def synthetic_bids(root: Path, n_subjects: int, layout: str) -> None:
    """A BIDS tree of ``n_subjects`` with the file names of ``layout`` and empty files."""
    labels = [f"{i:05d}" for i in range(1, n_subjects + 1)]
    (root / "dataset_description.json").write_text('{"Name": "bench", "BIDSVersion": "1.9.0"}')
    rows = "".join(f"sub-{s}\t{('patient', 'control')[i % 2]}\tsite{i % 20}\t{20 + i % 50}\t"
                   f"{'MF'[i % 2]}\n" for i, s in enumerate(labels))
    (root / "participants.tsv").write_text("participant_id\tdiagnosis\tsite\tage\tsex\n" + rows)
    for subject in labels:
        if layout == "eeg":
            folder = root / f"sub-{subject}" / "eeg"
            folder.mkdir(parents=True)
            for extension in ("vhdr", "vmrk", "eeg"):
                (folder / f"sub-{subject}_task-rest_eeg.{extension}").touch()
        else:
            folder = root / f"sub-{subject}" / "func"
            folder.mkdir(parents=True)
            (folder / f"sub-{subject}_task-rest_seg-CC200_stat-mean_timeseries.tsv").touch()


def config_for(n_subjects: int, layout: str, root: Path) -> dict:
    name = f"bench_{layout}{n_subjects}"
    if layout == "demo":
        return {"name": name, "demo": {"n_subjects": n_subjects}}
    config = {"name": name, "demo": {"enabled": False}, "bids": {"root": str(root)}}
    if layout == "eeg":
        return config | {"fmri": {"enabled": False}}
    return config | {"eeg": {"enabled": False},
                     "fmri": {"timeseries": str(root), "atlas": {"name": "CC200"}},
                     "ssl": {"crossmodal": {"enabled": False}}}


def dry_run(n_subjects: int, layout: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "bids"
        root.mkdir()
        if layout != "demo":
            synthetic_bids(root, n_subjects, layout)
        config = Path(folder) / "config.yaml"
        config.write_text(yaml.safe_dump(config_for(n_subjects, layout, root)))
        tic = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "rules",
                              "--configfile", str(config)],
                             capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - tic
    total = int(re.search(r"^total\s+(\d+)", run.stdout, re.MULTILINE).group(1))
    return seconds, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layout", choices=["demo", "eeg", "timeseries"], default="demo")
    parser.add_argument("--subjects", type=int, nargs="+", default=[40, 160, 640])
    args = parser.parse_args()
    rows = [(n, *dry_run(n, args.layout)) for n in args.subjects]
    base = rows[0][1] / rows[0][0]
    print(f"layout: {args.layout}")
    print(f"{'participants':>12} {'jobs':>6} {'dry-run s':>10} {'ms/participant':>15} "
          f"{'ratio':>6}")
    for n, seconds, jobs in rows:
        print(f"{n:>12} {jobs:>6} {seconds:>10.2f} {1000 * seconds / n:>15.1f} "
              f"{(seconds / n) / base:>6.2f}")


if __name__ == "__main__":
    main()
