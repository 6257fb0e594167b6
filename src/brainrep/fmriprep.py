"""fMRIPrep as a workflow step: the command lines for one participant.

Two engines run the same pinned fMRIPrep release:

* ``apptainer``: Snakemake's ``container:`` directive (``--sdm apptainer``) runs
  :func:`participant_command` inside ``docker://nipreps/fmriprep:<version>`` or a local ``.sif``;
* ``docker``: the job calls Docker itself with :func:`docker_command`, the same ``docker run``
  that ``fmriprep-docker`` builds (it needs a terminal to answer its prompts, so a job cannot call
  the wrapper).

Outputs follow the standard fMRIPrep derivative layout (the output folder *is* the ``fmriprep``
derivatives folder, as since fMRIPrep 21).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from brainrep.bids import Recording, space_entities

DOCKER_LICENSE = "/opt/freesurfer/license.txt"
DOCKER_TEMPLATEFLOW = "/templateflow"


def output_spaces(space: str, options: dict) -> list[str]:
    """The analysis space first, then any further ``fmri.fmriprep.output_spaces``."""
    return [space, *[s for s in options["output_spaces"] if s != space]]


def passthrough_arguments(participant: str, options: dict) -> list[str]:
    """fMRIPrep options that reach the tool unchanged, in a fixed order."""
    args = ["--participant-label", participant, "--level", options["level"],
            "--nthreads", str(options["nthreads"]), "--mem-mb", str(options["mem_mb"]),
            "--skip-bids-validation", "--notrack"]
    if options["fs_no_reconall"]:
        args.append("--fs-no-reconall")
    return args + list(options["extra_args"])


def participant_command(bids_dir: str, output_dir: str, work_dir: str, participant: str,
                        space: str, options: dict) -> list[str]:
    """``fmriprep`` for one participant as it runs inside its container (host paths)."""
    return ["fmriprep", os.path.abspath(bids_dir), os.path.abspath(output_dir), "participant",
            *passthrough_arguments(participant, options),
            "-w", os.path.abspath(work_dir),
            "--fs-license-file", os.path.abspath(options["license"]),
            "--output-spaces", *output_spaces(space, options)]


def docker_command(bids_dir: str, output_dir: str, work_dir: str, participant: str,
                   space: str, options: dict) -> list[str]:
    """The ``docker run`` that ``fmriprep-docker --no-tty`` runs for the same options.

    A TemplateFlow cache (``options["templateflow_home"]``) is mounted at ``/templateflow``
    and named by ``TEMPLATEFLOW_HOME``, which the wrapper has no option for.
    """
    absolute = {k: os.path.abspath(v) for k, v in
                {"bids": bids_dir, "out": output_dir, "work": work_dir,
                 "license": options["license"]}.items()}
    command = ["docker", "run", "--rm"]
    if options["templateflow_home"]:
        command += ["-e", f"TEMPLATEFLOW_HOME={DOCKER_TEMPLATEFLOW}",
                    "-v", f"{os.path.abspath(options['templateflow_home'])}:"
                          f"{DOCKER_TEMPLATEFLOW}"]
    command += ["-v", f"{absolute['license']}:{DOCKER_LICENSE}:ro",
                "-v", f"{absolute['bids']}:/data:ro",
                "-v", f"{absolute['out']}:/out",
                "-v", f"{absolute['work']}:/scratch",
                options["image"].removeprefix("docker://"),
                "/data", "/out", "participant", *passthrough_arguments(participant, options),
                "-w", "/scratch", "--output-spaces", *output_spaces(space, options)]
    return command


def shell_command(bids_dir: str, output_dir: str, work_dir: str, participant: str,
                  space: str, options: dict) -> str:
    """The job's shell line for the configured engine (``fmri.fmriprep.engine``)."""
    build = docker_command if options["engine"] == "docker" else participant_command
    line = shlex.join(build(bids_dir, output_dir, work_dir, participant, space, options))
    if options["engine"] == "apptainer" and options["templateflow_home"]:
        home = shlex.quote(os.path.abspath(options["templateflow_home"]))
        line = f"TEMPLATEFLOW_HOME={home} {line}"
    return f"mkdir -p {shlex.quote(os.path.abspath(work_dir))} && {line}"


def expected_outputs(raw_bold: list[Recording], bids_dir: str, output_dir: str,
                     space: str) -> list[Recording]:
    """The preprocessed BOLD runs fMRIPrep writes for these raw runs, in ``space``."""
    suffix = f"_{space_entities(space)}_desc-preproc_bold.nii.gz"
    return [Recording(run.subject, run.entities,
                      f"{output_dir}/{Path(run.path).parent.relative_to(bids_dir)}/"
                      f"{run.key}{suffix}") for run in raw_bold]
