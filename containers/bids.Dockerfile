# Image for the 'bids' rule family: the pinned conda environment envs/bids.yaml plus brainrep.
# Build from the repository root:
#   docker build -f containers/bids.Dockerfile -t ghcr.io/brainrep/brainrep-bids:0.2.0 .
# Apptainer on a cluster: apptainer build brainrep-bids.sif docker-daemon://ghcr.io/brainrep/brainrep-bids:0.2.0
FROM condaforge/miniforge3:24.11.3-2
COPY envs/bids.yaml /tmp/env.yaml
RUN mamba env update -n base -f /tmp/env.yaml && mamba clean -afy
COPY pyproject.toml README.md /opt/brainrep/
COPY src /opt/brainrep/src
RUN pip install --no-deps --no-cache-dir /opt/brainrep
