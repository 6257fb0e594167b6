"""A single-node SLURM cluster on this machine, for tests (Debian's slurm-wlm, as root).

Started and stopped by PID; its configuration, state and logs live in one folder, linked from
/etc/slurm/slurm.conf while it runs (srun inside jobs reads only that path). Without
``slurmdbd`` there is no ``sacct``, so finished jobs stay visible to ``squeue`` for
``MinJobAge`` seconds (>= 120, which snakemake-executor-plugin-slurm needs to use ``squeue``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def available() -> bool:
    """Whether the SLURM and munge daemons are installed and this process may start them."""
    return os.geteuid() == 0 and all(shutil.which(d) for d in DAEMONS)


def _node_line(min_cpus: int = 8) -> str:
    """This machine as one node, claiming at least ``min_cpus`` CPUs so the profile's 8-job
    groups and per-rule threads schedule on a small CI machine (slurmd accepts the claim with
    ``SlurmdParameters=config_overrides``)."""
    found = subprocess.run(["slurmd", "-C"], capture_output=True, text=True,
                           check=True).stdout.split()
    fields = dict(item.split("=", 1) for item in found if "=" in item)
    cpus = max(int(fields["CPUs"]), min_cpus)
    memory = int(int(fields["RealMemory"]) * 0.9)
    return f"NodeName={fields['NodeName']} CPUs={cpus} RealMemory={memory}"


def write_config(folder: Path) -> Path:
    """slurm.conf for one node, no cgroups, no accounting daemon."""
    node = _node_line()
    name = node.split()[0].split("=")[1]
    for sub in ("state", "spool", "log"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    conf = folder / "slurm.conf"
    conf.write_text(f"""ClusterName=brainrep-ci
SlurmctldHost={name}
SlurmUser=root
AuthType=auth/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MinJobAge=300
KillWait=5
InactiveLimit=0
ReturnToService=2
SlurmdParameters=config_overrides
{node} State=UNKNOWN
PartitionName=main Nodes={name} Default=YES MaxTime=INFINITE State=UP
""")
    return conf


def _left_by_a_killed_run(system_conf: Path) -> bool:
    """Whether ``system_conf`` is this helper's link from a run that was killed before
    ``stop()``: dangling, or to a brainrep-ci config whose slurmctld is gone."""
    if not system_conf.is_symlink():
        return False
    target = system_conf.resolve()
    if not target.is_file():
        return True
    if not target.read_text().startswith("ClusterName=brainrep-ci"):
        return False
    try:
        os.kill(int((target.parent / "slurmctld.pid").read_text()), 0)
    except (OSError, ValueError):
        return True
    return False


class Cluster:
    """Start munged, slurmctld and slurmd; ``stop()`` kills exactly those PIDs."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.conf = write_config(folder)
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.pids: list[int] = []
        self.linked_conf: Path | None = None

    def start(self, timeout_s: float = 60) -> Cluster:
        # srun inside batch jobs looks for /etc/slurm/slurm.conf, not $SLURM_CONF
        system_conf = Path("/etc/slurm/slurm.conf")
        if _left_by_a_killed_run(system_conf):
            system_conf.unlink()
        if system_conf.exists() or system_conf.is_symlink():
            raise RuntimeError(f"{system_conf} exists: this test starts its own cluster and "
                               "will not replace a configured one.")
        system_conf.parent.mkdir(exist_ok=True)
        system_conf.symlink_to(self.conf)
        self.linked_conf = system_conf
        munge_run = Path("/run/munge")
        munge_run.mkdir(exist_ok=True)
        shutil.chown(munge_run, "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "munged", "--force"], check=True)
        self.pids.append(self._wait_pid(munge_run / "munged.pid", timeout_s))
        for daemon, pid_file in (("slurmctld", "slurmctld.pid"), ("slurmd", "slurmd.pid")):
            subprocess.run([daemon, "-f", str(self.conf)], env=self.env, check=True)
            self.pids.append(self._wait_pid(self.folder / pid_file, timeout_s))
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            state = self.run("sinfo", "-h", "-o", "%T").stdout.strip()
            if state == "idle":
                return self
            time.sleep(1)
        raise RuntimeError(f"SLURM node not idle after {timeout_s} s (state {state!r}); "
                           f"see {self.folder}/log")

    def _wait_pid(self, path: Path, timeout_s: float) -> int:
        deadline = time.time() + timeout_s
        while not path.is_file() or not path.read_text().strip():
            if time.time() > deadline:
                raise RuntimeError(f"{path} not written; see {self.folder}/log")
            time.sleep(0.2)
        return int(path.read_text())

    def run(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, env=self.env, capture_output=True, text=True)

    def stop(self) -> None:
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        time.sleep(2)
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        if self.linked_conf is not None:
            self.linked_conf.unlink()
