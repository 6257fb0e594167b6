"""fMRIPrep as a rule: command lines against fmriprep-docker's own, and the DAG from raw BOLD."""

import shlex
import subprocess
import sys
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import yaml
from conftest import SCHEMA, copy_workflow

from brainrep import fmriprep
from brainrep.bids import Recording
from brainrep.config import validate_config

VERSION = "25.2.7"


def _options(tmp_path, **changes) -> dict:
    license_file = tmp_path / "license.txt"
    license_file.write_text("user@example.org\n12345\n")
    options = {"run": True, "license": str(license_file), "engine": "docker",
               "image": f"docker://nipreps/fmriprep:{VERSION}", "templateflow_home": None,
               "output_spaces": ["T1w"], "level": "full", "fs_no_reconall": True,
               "nthreads": 4, "mem_mb": 12000, "extra_args": ["--dummy-scans", "2"]}
    return options | changes


def _wrapper_command(monkeypatch, argv: list[str]) -> list[str]:
    """The `docker run` fmriprep-docker executes for argv (Docker itself stubbed out)."""
    from fmriprep_docker import __main__ as wrapper

    calls = []

    def run(command, **_):
        calls.append(command)
        return SimpleNamespace(returncode=0, stdout=b"27.3.1\n")

    monkeypatch.setattr(wrapper, "check_docker", lambda: 1)
    monkeypatch.setattr(wrapper, "check_image", lambda image: True)
    monkeypatch.setattr(wrapper, "check_memory", lambda image: 16000)
    monkeypatch.setattr(wrapper.subprocess, "run", run)
    monkeypatch.setattr(sys, "argv", ["fmriprep-docker", *argv])
    assert wrapper.main() == 0
    command = calls[-1]
    # the wrapper records the engine version for provenance; brainrep's sidecars do that
    at = command.index("DOCKER_VERSION_8395080871=27.3.1")
    return command[:at - 1] + command[at + 1:]


def test_docker_command_matches_fmriprep_docker(tmp_path, monkeypatch):
    options = _options(tmp_path)
    bids, out, work = str(tmp_path / "bids"), str(tmp_path / "out"), str(tmp_path / "work")
    ours = fmriprep.docker_command(bids, out, work, "01", "MNI152NLin2009cAsym:res-2", options)
    theirs = _wrapper_command(monkeypatch, [
        bids, out, "participant", *fmriprep.passthrough_arguments("01", options),
        "-w", work, "--fs-license-file", options["license"],
        "--output-spaces", "MNI152NLin2009cAsym:res-2", "T1w",
        "--no-tty", "-i", f"nipreps/fmriprep:{VERSION}"])
    assert ours == theirs
    assert "--fs-no-reconall" in ours and ours[ours.index("--mem-mb") + 1] == "12000"


def test_templateflow_cache_is_mounted_and_named(tmp_path):
    options = _options(tmp_path, templateflow_home=str(tmp_path / "tf"))
    docker = fmriprep.docker_command("b", "o", "w", "01", "MNI152NLin6Asym", options)
    assert f"{tmp_path / 'tf'}:/templateflow" in docker
    assert "TEMPLATEFLOW_HOME=/templateflow" in docker
    line = fmriprep.shell_command("b", "o", "w/sub-01", "01", "MNI152NLin6Asym",
                                  options | {"engine": "apptainer"})
    assert f"TEMPLATEFLOW_HOME={tmp_path / 'tf'} fmriprep " in line


def test_apptainer_command_runs_fmriprep_with_host_paths(tmp_path):
    options = _options(tmp_path, engine="apptainer")
    command = fmriprep.participant_command("bids", "out", "work/sub-01", "01",
                                           "MNI152NLin2009cAsym", options)
    assert command[:4] == ["fmriprep", str(tmp_path.cwd() / "bids"),
                           str(tmp_path.cwd() / "out"), "participant"]
    assert command[command.index("--fs-license-file") + 1] == options["license"]
    assert command[-2:] == ["MNI152NLin2009cAsym", "T1w"]  # analysis space first
    assert command[command.index("--participant-label") + 1] == "01"


def test_expected_outputs_follow_the_fmriprep_layout():
    raw = [Recording("01", "ses-1_task-rest_run-2", "/d/sub-01/ses-1/func/"
                     "sub-01_ses-1_task-rest_run-2_bold.nii.gz")]
    [out] = fmriprep.expected_outputs(raw, "/d", "/r/derivatives/fmriprep",
                                      "MNI152NLin2009cAsym:res-2")
    assert out.path == ("/r/derivatives/fmriprep/sub-01/ses-1/func/sub-01_ses-1_task-rest_run-2"
                        "_space-MNI152NLin2009cAsym_res-2_desc-preproc_bold.nii.gz")


def _raw_bids(root):
    root.mkdir()
    (root / "dataset_description.json").write_text('{"Name": "raw", "BIDSVersion": "1.9.0"}')
    (root / "participants.tsv").write_text("participant_id\tdiagnosis\nsub-01\tpatient\n"
                                           "sub-02\tcontrol\n")
    bold = nib.Nifti1Image(np.zeros((4, 4, 4, 12), dtype=np.int16), np.eye(4))
    t1w = nib.Nifti1Image(np.zeros((4, 4, 4), dtype=np.int16), np.eye(4))
    for sub, runs in (("01", ["run-1", "run-2"]), ("02", ["run-1"])):
        for datatype in ("anat", "func"):
            (root / f"sub-{sub}" / datatype).mkdir(parents=True)
        t1w.to_filename(root / f"sub-{sub}" / "anat" / f"sub-{sub}_T1w.nii.gz")
        for run in runs:
            bold.to_filename(root / f"sub-{sub}" / "func" / f"sub-{sub}_task-rest_{run}"
                                                             "_bold.nii.gz")


def test_raw_bids_dag_runs_fmriprep_per_participant(tmp_path, monkeypatch):
    work = copy_workflow(tmp_path / "wf")
    _raw_bids(tmp_path / "raw")
    options = _options(tmp_path, engine="apptainer")
    config = {"name": "rawfmri", "demo": {"enabled": False},
              "bids": {"root": str(tmp_path / "raw")}, "eeg": {"enabled": False},
              "fmri": {"space": "MNI152NLin2009cAsym:res-2",
                       "atlas": {"source": "coordinates", "name": "Power2011"},
                       "fmriprep": {k: options[k] for k in ("run", "license", "nthreads",
                                                            "mem_mb", "extra_args")}}}
    (work / "raw.yaml").write_text(yaml.safe_dump(config))
    dry = subprocess.run([sys.executable, "-m", "snakemake", "fmri", "-n", "-p", "--cores", "2",
                          "--configfile", "raw.yaml"], cwd=work, capture_output=True,
                         text=True, timeout=300)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    for job, count in (("fmriprep_01", 1), ("fmriprep_02", 1), ("fmri_parcellate", 3)):
        assert any(line.split()[:2] == [job, str(count)] for line in dry.stdout.splitlines()), \
            (job, dry.stdout[-2000:])
    validated = validate_config(yaml.safe_load((work / "raw.yaml").read_text()), SCHEMA)
    monkeypatch.chdir(work)  # the job's paths are absolute, from the workflow's folder
    expected = fmriprep.shell_command(
        str(tmp_path / "raw"), "results/rawfmri/derivatives/fmriprep",
        "work/fmriprep/sub-01", "01", "MNI152NLin2009cAsym:res-2",
        validated["fmri"]["fmriprep"])
    assert expected in dry.stdout
    assert f"docker://nipreps/fmriprep:{VERSION}" == validated["fmri"]["fmriprep"]["image"]
    assert shlex.split(expected.split(" && ")[1])[-2:] == ["--output-spaces",
                                                            "MNI152NLin2009cAsym:res-2"]


def test_fmriprep_needs_a_license(tmp_path):
    raw = tmp_path / "raw"
    _raw_bids(raw)
    config = {"demo": {"enabled": False}, "bids": {"root": str(raw)},
              "fmri": {"fmriprep": {"run": True, "license": str(tmp_path / "none.txt")}}}
    with pytest.raises(ValueError, match="FreeSurfer license"):
        validate_config(config, SCHEMA)
