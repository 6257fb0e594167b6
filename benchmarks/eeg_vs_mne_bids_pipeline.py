"""EEG preprocessing: brainrep's stage against MNE-BIDS-Pipeline, same steps, same data.

Steps on both sides: EEG channels, band-pass 1-40 Hz, resample to 100 Hz, average reference,
standard 10-20 positions, 2-s windows without overlap and without rejection, epochs written to
FIF. No notch, bad-channel detection or ICA. Each side runs in its own process on one core; wall
time and peak resident memory of that process tree are measured in the same run.

    python benchmarks/eeg_vs_mne_bids_pipeline.py --bids-root ../shared/data/eegmat \\
        --mbp /path/to/venv-mbp/bin/mne_bids_pipeline

MNE-BIDS-Pipeline has many dependencies (vtk, dask...): install it in its own environment,
``python -m venv venv-mbp && venv-mbp/bin/pip install -c constraints.txt mne-bids-pipeline``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)
SETTINGS = {"l_freq": 1.0, "h_freq": 40.0, "notch": False, "sfreq": 100.0,
            "reference": "average", "window_s": 2.0, "overlap_s": 0.0, "reject_uv": None,
            "montage": "standard_1020", "bad_channel_criteria": []}


def measured(command: list[str]) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MiB) of the largest process ``command`` starts."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True,
                         text=True)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    rss_kb = int(run.stdout.rsplit("MAXRSS_KB", 1)[1].split()[0])
    return wall, rss_kb / 1024


def brainrep_worker(bids_root: str, out: str, tasks: list[str]) -> None:
    """Run the brainrep EEG stage function on every recording, one after the other."""
    from brainrep import eeg
    from brainrep.bids import find_eeg

    for task in tasks:
        for rec in find_eeg(bids_root, task, []):
            eeg.run_recording(bids_root, rec.path, f"{out}/{rec.key}_proc-clean_raw.fif",
                              f"{out}/{rec.key}_epo.fif",
                              settings=eeg.PreprocessSettings(**SETTINGS))


def renamed_rest_copy(bids_root: str, target: Path) -> None:
    """Copy the dataset with task ``rest`` renamed ``baseline``: MNE-BIDS-Pipeline 1.10 reads a
    task literally named 'rest' as its auxiliary resting-state run and fails (KeyError
    'raw_task-rest_run-None'). Both tools then read this same copy."""
    shutil.copytree(bids_root, target)
    for path in sorted(target.rglob("*task-rest*")):
        path.rename(path.with_name(path.name.replace("task-rest", "task-baseline")))
    for path in target.rglob("*_scans.tsv"):
        path.write_text(path.read_text().replace("task-rest", "task-baseline"))
    for path in target.rglob("*task-baseline*_eeg.json"):
        path.write_text(path.read_text().replace('"TaskName": "rest"', '"TaskName": "baseline"'))


def mbp_config(bids_root: str, out: str, task: str) -> str:
    return f"""
bids_root = {str(Path(bids_root).resolve())!r}
deriv_root = {out!r}
task = {task!r}
task_is_rest = True
data_type = "eeg"
ch_types = ["eeg"]
eeg_template_montage = "standard_1020"
eeg_reference = "average"
l_freq = {SETTINGS["l_freq"]}
h_freq = {SETTINGS["h_freq"]}
notch_freq = None
raw_resample_sfreq = {SETTINGS["sfreq"]}
rest_epochs_duration = {SETTINGS["window_s"]}
rest_epochs_overlap = {SETTINGS["overlap_s"]}
epochs_tmin = 0.0
baseline = None
reject = None
spatial_filter = None
run_source_estimation = False
process_empty_room = False
n_jobs = 1
on_error = "abort"
"""


def count_epochs(files: list[Path]) -> tuple[int, int]:
    """Number of epochs files and of epochs in them."""
    import mne

    return len(files), sum(len(mne.read_epochs(f, preload=False, verbose="error"))
                           for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bids-root", default="../shared/data/eegmat")
    parser.add_argument("--tasks", nargs="+", default=["baseline", "arithmetic"],
                        help="tasks after renaming rest to baseline")
    parser.add_argument("--mbp", default="mne_bids_pipeline",
                        help="the mne_bids_pipeline command (from its own environment)")
    parser.add_argument("--brainrep-worker", nargs=2, metavar=("BIDS_ROOT", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.brainrep_worker:
        brainrep_worker(*args.brainrep_worker, args.tasks)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bids_root = str(tmp / "bids")
        renamed_rest_copy(args.bids_root, Path(bids_root))
        (tmp / "brainrep").mkdir()
        ours = measured([sys.executable, __file__, "--tasks", *args.tasks,
                         "--brainrep-worker", bids_root, str(tmp / "brainrep")])
        theirs_wall, theirs_rss = 0.0, 0.0
        for task in args.tasks:
            config = tmp / f"mbp_{task}.py"
            config.write_text(mbp_config(bids_root, str(tmp / "mbp"), task))
            wall, rss = measured([args.mbp, "--config", str(config), "--steps",
                                  "init,preprocessing"])
            theirs_wall, theirs_rss = theirs_wall + wall, max(theirs_rss, rss)
        n_ours = count_epochs(sorted((tmp / "brainrep").glob("*_epo.fif")))
        n_theirs = count_epochs(sorted((tmp / "mbp").rglob("*_proc-clean_epo.fif")))
    print(f"EEG preprocessing of {args.bids_root} (tasks {', '.join(args.tasks)}), one core\n")
    if n_ours[0] != n_theirs[0]:
        raise RuntimeError(f"brainrep wrote {n_ours[0]} epochs files, MNE-BIDS-Pipeline "
                           f"{n_theirs[0]}: the runs are not comparable.")
    print("| tool | files | epochs | wall time (s) | peak memory (MiB) |")
    print("|---|---|---|---|---|")
    print(f"| brainrep (brainrep.eeg.run_recording) | {n_ours[0]} | {n_ours[1]} | "
          f"{ours[0]:.1f} | {ours[1]:.0f} |")
    print(f"| MNE-BIDS-Pipeline (--steps init,preprocessing) | {n_theirs[0]} | {n_theirs[1]} | "
          f"{theirs_wall:.1f} | {theirs_rss:.0f} |")
    print(f"\nratio MNE-BIDS-Pipeline / brainrep: wall time {theirs_wall / ours[0]:.2f}x, "
          f"peak memory {theirs_rss / ours[1]:.2f}x")


if __name__ == "__main__":
    main()
