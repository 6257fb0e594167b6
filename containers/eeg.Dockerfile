# Image for the 'eeg' rule family: the pinned conda environment envs/eeg.yaml plus brainrep.
# Build from the repository root:
#   docker build -f containers/eeg.Dockerfile -t ghcr.io/brainrep/brainrep-eeg:0.2.0 .
# Apptainer on a cluster: apptainer build brainrep-eeg.sif docker-daemon://ghcr.io/brainrep/brainrep-eeg:0.2.0
FROM condaforge/miniforge3:24.11.3-2
COPY envs/eeg.yaml /tmp/env.yaml
RUN mamba env update -n base -f /tmp/env.yaml && mamba clean -afy
COPY pyproject.toml README.md /opt/brainrep/
COPY src /opt/brainrep/src
RUN pip install --no-deps --no-cache-dir /opt/brainrep
