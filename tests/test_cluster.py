"""The demo through a live single-node SLURM (profiles/slurm), against a local run.

Needs Debian's slurmctld, slurmd, slurm-client and munge, and root (``.ci/run`` installs them);
skipped otherwise, unless BRAINREP_REQUIRE_SLURM=1 makes their absence a failure.
"""

import os
import subprocess
import sys

import pandas as pd
import pytest
import slurm_cluster
import yaml
from conftest import copy_workflow

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]

# CI time: no SSL (its jobs are submitted like any other; the demo test trains them locally)
SMALL_DEMO = {"name": "clusterdemo", "demo": {"n_subjects": 12},
              "eeg": {"bad_channel_criteria": ["nan_flat", "deviation"]},
              "ssl": {"enabled": False},
              "downstream": {"n_permutations": 10, "n_bootstrap": 50, "label_repeats": 1,
                             "label_fractions": [0.5, 1.0]}}
# The CI cluster has no slurmdbd (no sacct): the plugin asks squeue.
CLUSTER_ARGS = ["--profile", "profiles/slurm", "--slurm-status-command", "squeue",
                "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "5",
                "--slurm-keep-successful-logs"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not slurm_cluster.available():
        if os.environ.get("BRAINREP_REQUIRE_SLURM") == "1":
            pytest.fail("BRAINREP_REQUIRE_SLURM=1 but slurmctld/slurmd/munged are not "
                        "installed or this is not root.")
        pytest.skip("no SLURM daemons here (apt-get install slurmctld slurmd slurm-client "
                    "munge, as root)")
    live = slurm_cluster.Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        yield live.start()
    finally:
        live.stop()


def _run(workdir, env, *args, timeout):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _metrics(workdir):
    table = pd.read_csv(workdir / "results/clusterdemo/group/predict/target-diagnosis_metrics.tsv",
                        sep="\t")
    return table.set_index(["cv_scheme", "feature_set", "metric"])["mean"].sort_index()


def test_demo_through_live_slurm_matches_a_local_run(cluster, tmp_path, capsys):
    local, remote = copy_workflow(tmp_path / "local"), copy_workflow(tmp_path / "slurm")
    for workdir in (local, remote):
        (workdir / "small.yaml").write_text(yaml.safe_dump(SMALL_DEMO))
    # the path to the prediction tables: index, EEG, fMRI and prediction jobs (not the
    # subtyping and report jobs, which go through sbatch the same way)
    target = "results/clusterdemo/group/predict/target-diagnosis_metrics.tsv"
    done = _run(local, os.environ, "--cores", "2", target, "--configfile", "small.yaml",
                timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    # timeout -s KILL semantics: a hung status check must not hang CI
    run = _run(remote, cluster.env, target, "--configfile", "small.yaml", *CLUSTER_ARGS,
               timeout=2400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    jobs = cluster.run("squeue", "-t", "all", "-h", "-o", "%i %j %T").stdout.split("\n")
    with capsys.disabled():  # evidence in the CI log, printed even when the test passes
        print("\nsqueue -t all after the demo ran through SLURM:\n" + "\n".join(jobs))
    assert sum("COMPLETED" in j for j in jobs) >= 10  # every job went through sbatch
    assert not any("FAILED" in j for j in jobs)
    assert list((remote / ".snakemake" / "slurm_logs").rglob("*.log"))
    # the prediction job asked for its threads' CPUs and for the memory of its tables
    from brainrep.predict import memory_mb

    requests = [row.split("|")[1:] for row in cluster.run(
        "squeue", "-t", "all", "-h", "-o", "%k|%C|%m").stdout.split()
        if row.startswith("rule_predict_target")]
    assert len(requests) == 1 and requests[0][0] == "4", requests
    memory = requests[0][1]  # squeue writes whole GiB as G
    megabytes = int(memory[:-1]) * {"M": 1, "G": 1024, "T": 1024**2}[memory[-1]]
    tables = (remote / "results/clusterdemo/group/features").glob("*")
    assert megabytes == memory_mb(tables, n_jobs=4), requests
    ours, theirs = _metrics(local), _metrics(remote)
    assert ours.index.equals(theirs.index)
    assert {"eeg_bandpower", "fmri_connectivity", "confounds"} <= set(ours.index.unique(1))
    # the HMM's EM (fmri_states) may round differently with other thread counts
    classical = [i for i in ours.index if i[1] != "fmri_states"]
    assert (ours[classical] - theirs[classical]).abs().max() < 1e-9  # identical numbers
    assert (ours - theirs).abs().max() < 0.2


SLOW_RULE = """
rule slow:
    output: "done.txt"
    log: "slow.log"
    resources: runtime=lambda wildcards, attempt: attempt  # minutes
    # the first attempt outlives its minute, whenever SLURM checks the limit; the retry need
    # not fill its two (CI time)
    shell: "[ {resources.runtime} -gt 1 ] || sleep 600; echo finished > {output}"
"""


def test_job_killed_for_time_is_retried_with_more(cluster, tmp_path, capsys):
    """SLURM kills attempt 1 at its 1-minute limit; the retry asks for 2 minutes and passes."""
    (tmp_path / "Snakefile").write_text(SLOW_RULE)
    args = list(CLUSTER_ARGS)
    args[1] = str(copy_workflow(tmp_path / "wf") / "profiles" / "slurm")
    run = _run(tmp_path, cluster.env, *args, "--retries", "1", timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (tmp_path / "done.txt").read_text() == "finished\n"
    states = cluster.run("squeue", "-t", "all", "-h", "-o", "%k %T %l").stdout
    with capsys.disabled():
        print("\nsqueue -t all after the time-limit retry:\n" + states)
    limits = dict(line.split()[1:] for line in states.splitlines() if line.startswith("rule_slow"))
    assert limits == {"TIMEOUT": "1:00", "COMPLETED": "2:00"}, states
