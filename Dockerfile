# syntax=docker/dockerfile:1
# specc runtime image: the `specc-runtime` entrypoint every rendered container runs.
#
# Build and push (the tag must equal compiler/spec.py DEFAULT_IMAGE, i.e. the package version):
#   docker build -t ghcr.io/specc-dev/specc-runtime:0.1.0 .
#   docker push ghcr.io/specc-dev/specc-runtime:0.1.0
# Optional extras on top of `runtime` (comma-separated): alibi explanations and/or PyTorch (CPU):
#   docker build --build-arg EXTRAS=explain,torch -t ghcr.io/specc-dev/specc-runtime:0.1.0-full .
# Argo CD CMP sidecar (the compiler only, `specc render`; plugin.yaml):
#   docker build --target cmp -t ghcr.io/specc-dev/specc-cmp:0.1.0 .

# ---------------------------------------------------------------- builder: a venv in /opt/specc
FROM python:3.11.13-slim-bookworm AS builder
ARG EXTRAS=""
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml constraints.txt README* ./
COPY compiler ./compiler
COPY localrun ./localrun
COPY runtime ./runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Versions come from constraints.txt (the same pins CI tests with); torch +cpu wheels need
# the PyTorch index. Non-editable install: the venv does not need /src afterwards.
RUN python -m venv /opt/specc \
 && extras="runtime${EXTRAS:+,${EXTRAS}}" \
 && /opt/specc/bin/pip install --constraint constraints.txt \
      --extra-index-url "${TORCH_INDEX_URL}" ".[${extras}]" \
 && /opt/specc/bin/specc-runtime --help > /dev/null

# ---------------------------------------------------------------- cmp: Argo CD plugin sidecar
FROM python:3.11.13-slim-bookworm AS cmp
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/specc/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt README* ./
COPY compiler ./compiler
COPY runtime ./runtime
RUN python -m venv /opt/specc \
 && /opt/specc/bin/pip install --constraint constraints.txt . \
 && rm -rf /src
# Argo CD runs plugin sidecars as user 999.
USER 999:999
WORKDIR /home/argocd

# ---------------------------------------------------------------- runtime (default target)
FROM python:3.11.13-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="specc-runtime" \
      org.opencontainers.image.description="Runs specc's built-in trainers inside Kubeflow TFJob / PyTorchJob / Job pods" \
      org.opencontainers.image.source="https://github.com/specc-dev/specc" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0" \
      dev.specc.image="ghcr.io/specc-dev/specc-runtime:0.1.0"
RUN groupadd --system --gid 10001 specc \
 && useradd --system --uid 10001 --gid specc --home-dir /home/specc --create-home specc
COPY --from=builder /opt/specc /opt/specc
ENV PATH=/opt/specc/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/specc
USER 10001:10001
WORKDIR /home/specc
ENTRYPOINT ["specc-runtime"]
