"""Per-rule environments agree with the lock file, and the workflow passes snakemake --lint."""

import subprocess
import sys

import pytest
import yaml
from conftest import REPO

LOCK = dict(line.split("==", 1) for line in (REPO / "constraints.txt").read_text().splitlines()
            if line and not line.startswith("#"))
ENVS = sorted((REPO / "envs").glob("*.yaml"))


@pytest.mark.parametrize("path", ENVS, ids=[p.stem for p in ENVS])
def test_env_pins_match_the_lock(path):
    env = yaml.safe_load(path.read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    for requirement in pip:
        name, pinned = requirement.split("==")
        assert LOCK[name] == pinned, f"{path.name}: {name} {pinned} != lock {LOCK[name]}"
    assert (REPO / "containers" / f"{path.stem}.Dockerfile").is_file()


def test_every_rule_family_is_used_and_lint_is_clean():
    rules = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    for path in ENVS:
        assert f"envs/{path.name}" in rules
    lint = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO,
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
