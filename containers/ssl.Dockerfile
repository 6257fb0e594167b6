# Image for the 'ssl' rule family: the pinned conda environment envs/ssl.yaml plus brainrep.
# Build from the repository root:
#   docker build -f containers/ssl.Dockerfile -t ghcr.io/brainrep/brainrep-ssl:0.2.0 .
# Apptainer on a cluster: apptainer build brainrep-ssl.sif docker-daemon://ghcr.io/brainrep/brainrep-ssl:0.2.0
FROM condaforge/miniforge3:24.11.3-2
COPY envs/ssl.yaml /tmp/env.yaml
RUN mamba env update -n base -f /tmp/env.yaml && mamba clean -afy
COPY envs/ssl.post-deploy.sh /tmp/post-deploy.sh
RUN bash /tmp/post-deploy.sh
COPY pyproject.toml README.md /opt/brainrep/
COPY src /opt/brainrep/src
RUN pip install --no-deps --no-cache-dir /opt/brainrep
