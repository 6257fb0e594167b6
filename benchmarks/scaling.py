"""brainrep from parcellated time series to leave-site-out prediction, against a plain script.

Run from the repository root: ``python benchmarks/scaling.py [--subjects 100 1000]
[--abide ../shared/data/abide-cc200]``.

The real ABIDE CC200 time series (163 participants, 4 sites) are replicated (new labels, the
participant's row of participants.tsv copied; links to the real files, then noisy copies, see
:func:`replicate`) to each size. For each size:

* ``brainrep``: ``snakemake --cores 2`` up to the ASD vs TD metrics table, without SSL
  (``ssl.enabled: false``) or subtyping, no label permutations (the issue's target run), 100
  bootstraps, the full label set only: per-stage wall time and peak resident memory from
  Snakemake's benchmark files, and the whole run's wall time;
* ``plain``: one Python script that reads the same files, computes the same Fisher-z
  correlation edges and fits the same model (scaling + ridge classifier with balanced classes,
  alpha chosen by leave-one-out) with leave-site-out folds, in one process.

Prints a table per stage (seconds and MiB at each size, growth exponent = slope of log time
over log size) and the brainrep / plain wall-time ratio of each size. brainrep does more
than the plain script in that time (QC and exclusions, the confound-only and tangent-space
baselines, participant-grouped CV besides leave-site-out, bootstrap intervals,
the site probe and the report's inputs); the ratio is the price of all of that.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

STAGES = ["bids_index", "fmri_connectivity", "fmri_windows", "outer_folds", "confound_features",
          "predict"]


def replicate(source: Path, target: Path, n_subjects: int) -> None:
    """``n_subjects`` participants made from ``source``'s (in a fixed shuffled order, cycling
    through them). The first pass links the real files; every later copy is the series plus
    Gaussian noise of 10 % of each parcel's SD (empty parcels stay empty), so that no two
    participants share a connectivity matrix (nothing computed once per distinct matrix
    profits from the replication)."""
    table = pd.read_csv(source / "participants.tsv", sep="\t", dtype=str, keep_default_na=False)
    table = table.sample(frac=1.0, random_state=0)  # every site in a small replicate
    series = {p: next((source / p / "func").glob(f"{p}_task-rest_*_timeseries.tsv*"))
              for p in table["participant_id"]}
    rng = np.random.default_rng(0)
    rows = []
    for index in range(n_subjects):
        row = table.iloc[index % len(table)].copy()
        label = f"sub-{index:05d}"
        original = series[row["participant_id"]]
        folder = target / label / "func"
        folder.mkdir(parents=True)
        copy = folder / original.name.replace(row["participant_id"], label)
        if index < len(table):
            copy.symlink_to(original)
        else:
            frame = pd.read_csv(original, sep="\t")
            noise = rng.standard_normal(frame.shape) * frame.std(ddof=0).to_numpy()
            (frame + 0.1 * noise).to_csv(copy, sep="\t", index=False, float_format="%.6g")
        row["participant_id"] = label
        rows.append(row)
    pd.DataFrame(rows).to_csv(target / "participants.tsv", sep="\t", index=False)
    (target / "dataset_description.json").write_text('{"Name": "replicated", '
                                                     '"BIDSVersion": "1.9.0"}')


def run_brainrep(root: Path, n_subjects: int
                 ) -> tuple[float, dict[str, tuple[float, float]], int]:
    name = f"scaling{n_subjects}"
    config = {"name": name, "demo": {"enabled": False}, "bids": {"root": str(root)},
              "eeg": {"enabled": False},
              "fmri": {"timeseries": str(root), "atlas": {"name": "CC200"}},
              "ssl": {"enabled": False},
              "downstream": {"targets": ["diagnosis"], "positive_class": "ASD",
                             "confounds": ["age", "sex"], "site_column": "site",
                             "n_permutations": 0, "n_bootstrap": 100,
                             "label_fractions": [1.0], "label_repeats": 1,
                             "states": {"enabled": False}, "multiview": {"enabled": False},
                             "subtyping": {"feature_sets": []}}}
    shutil.rmtree(f"results/{name}", ignore_errors=True)  # a full run every time
    config_file = root.parent / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    target = f"results/{name}/group/predict/target-diagnosis_metrics.tsv"
    tic = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", target,
                          "--configfile", str(config_file)], check=True, capture_output=True,
                         text=True)
    wall = time.perf_counter() - tic
    stages = {}
    for stage in STAGES:
        files = list(Path(f"results/{name}/benchmarks").glob(f"{stage}*.tsv")) + list(
            Path(f"results/{name}/benchmarks").glob(f"{stage}/*.tsv"))
        table = pd.concat([pd.read_csv(f, sep="\t") for f in files])
        stages[stage] = (float(table["s"].sum()), float(table["max_rss"].max()))
    # what the prediction job asked for (its rule's mem_mb, as Snakemake logged the job)
    job = run.stderr.split("rule predict_target:")[1].split("\n\n")[0]
    request = int(job.split("mem_mb=")[1].split(",")[0])
    return wall, stages, request


def run_plain(root: Path) -> float:
    """Seconds for the plain script, in a fresh process; prints its AUROC to stderr."""
    tic = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--plain", str(root)], check=True)
    return time.perf_counter() - tic


def plain(root: Path) -> None:
    """The baseline: Fisher-z edges of every run, ridge with leave-site-out."""
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import LeaveOneGroupOut
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    table = pd.read_csv(root / "participants.tsv", sep="\t")
    edges = []
    for participant in table["participant_id"]:
        path = next((root / participant / "func").glob("*_timeseries.tsv*"))
        series = pd.read_csv(path, sep="\t").to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.corrcoef(series.T)
        upper = r[np.triu_indices_from(r, k=1)]
        edges.append(np.arctanh(np.clip(np.nan_to_num(upper), -0.999999, 0.999999)))
    x, y = np.array(edges), (table["diagnosis"] == "ASD").to_numpy()
    scores = np.empty(len(y))
    for train, test in LeaveOneGroupOut().split(x, y, table["site"]):
        model = make_pipeline(StandardScaler(), RidgeClassifierCV(
            alphas=np.logspace(-2, 4, 7), class_weight="balanced")).fit(x[train], y[train])
        scores[test] = model.decision_function(x[test])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"plain: AUROC {roc_auc_score(y, scores):.3f}, peak {peak:.0f} MiB", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--abide", type=Path, default=Path("../shared/data/abide-cc200"))
    parser.add_argument("--plain", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain(args.plain)
        return
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in args.subjects:
            root = Path(folder) / f"abide{n}" / "bids"
            root.mkdir(parents=True)
            replicate(args.abide.resolve(), root, n)
            wall, stages, request = run_brainrep(root, n)
            results[n] = (wall, stages, run_plain(root), request)
    sizes = list(results)
    print(f"{'stage':<20}" + "".join(f"{f's @{n}':>10}{f'MiB @{n}':>11}" for n in sizes)
          + f"{'exponent':>10}")
    for stage in STAGES:
        seconds = [results[n][1][stage][0] for n in sizes]
        line = f"{stage:<20}" + "".join(f"{results[n][1][stage][0]:>10.1f}"
                                         f"{results[n][1][stage][1]:>11.0f}" for n in sizes)
        if len(sizes) > 1:
            line += f"{np.polyfit(np.log(sizes), np.log(seconds), 1)[0]:>10.2f}"
        print(line)
    for n in sizes:
        wall, stages, baseline, request = results[n]
        print(f"{n} participants: brainrep {wall:.0f} s, plain script {baseline:.0f} s, "
              f"ratio {wall / baseline:.1f}; predict asked for {request} MB, peaked at "
              f"{stages['predict'][1]:.0f} MiB")


if __name__ == "__main__":
    main()
