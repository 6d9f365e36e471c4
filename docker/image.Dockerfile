# The image service (nexa_image: diffusers + torch), with the tiny test pipeline baked in.
#   CPU (default):  docker build -f docker/image.Dockerfile -t nexa-image .
#   CUDA:           compose.cuda.yaml sets ACCELERATOR=cuda: torch is then PyPI's CUDA build, which
#                   brings its own CUDA libraries, so the base image stays the same.
# Build context: the repository root. Optional .wheelhouse/ (scripts/prepare-docker-host.sh).
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG BUILDER_IMAGE=${BASE_IMAGE}

FROM ${BUILDER_IMAGE} AS builder
ARG ACCELERATOR=cpu
# Where CPU torch comes from when the wheelhouse has none (PyPI's own torch is the CUDA build).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY docker/ensure-python.sh docker/install-deps.sh docker/requirements.py docker/
RUN sh docker/ensure-python.sh && python3 -m venv /opt/venv && mkdir -p /opt/nexa/models
ENV PATH=/opt/venv/bin:$PATH
# Dependencies before code, so a code change rebuilds only the last layers. The glob makes the
# wheelhouse optional (constraints.txt always matches, so COPY never finds nothing).
COPY constraints.txt .wheelhous[e] /wheelhouse/
COPY constraints.txt ./
COPY common/pyproject.toml common/
COPY cli/pyproject.toml cli/
COPY services/image/pyproject.toml services/image/
# The CLI (with the hub client) too: the Helm chart's init container runs `nexa pull MODEL` in this image.
RUN sh docker/install-deps.sh common[hub] cli services/image
COPY common common
COPY cli cli
COPY services/image services/image
RUN pip install --no-deps ./common ./cli ./services/image
# The default model `tiny-sd` (~7 MB, generated from a fixed seed, no download) is baked in so the
# service starts with no other step; any catalogue model can be (e.g. --build-arg BAKE_MODEL=sd-turbo).
ARG BAKE_MODEL=tiny-sd
COPY docker/bake_model.py docker/
RUN python3 docker/bake_model.py "$BAKE_MODEL" /opt/nexa/models

FROM ${BASE_IMAGE}
COPY docker/ensure-python.sh /tmp/
# A passwd line, not useradd: minimal bases lack it.
RUN sh /tmp/ensure-python.sh && rm /tmp/ensure-python.sh \
    && echo 'nexa:x:10001:10001:nexa:/home/nexa:/usr/sbin/nologin' >>/etc/passwd \
    && echo 'nexa:x:10001:' >>/etc/group \
    && mkdir -p /home/nexa /models && chown 10001:10001 /home/nexa /models
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/nexa /opt/nexa
COPY docker/entrypoint.sh docker/healthcheck.py /opt/nexa/bin/
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/home/nexa \
    NEXA_CACHE=/models NEXA_IMAGE_HOST=0.0.0.0 NEXA_IMAGE_PORT=8002
USER 10001:10001
WORKDIR /home/nexa
EXPOSE 8002
# /ready: healthy means the model is loaded and requests are served.
HEALTHCHECK --interval=5s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "/opt/nexa/bin/healthcheck.py", "image", "/ready"]
ENTRYPOINT ["/opt/nexa/bin/entrypoint.sh"]
CMD ["python3", "-m", "nexa_image"]
