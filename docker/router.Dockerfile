# The router (nexa_router): the one public /v1 API, proxying to the text, image and audio services.
#   docker build -f docker/router.Dockerfile -t nexa-router .   (context: the repository root)
# It runs no model, so there is no CUDA variant.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY docker/ensure-python.sh docker/install-deps.sh docker/requirements.py docker/
RUN sh docker/ensure-python.sh && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies before code, so a code change rebuilds only the last layer.
COPY constraints.txt ./
COPY common/pyproject.toml common/
COPY router/pyproject.toml router/
RUN sh docker/install-deps.sh common router
COPY common common
COPY router router
RUN pip install --no-deps ./common ./router

FROM ${BASE_IMAGE}
COPY docker/ensure-python.sh /tmp/
# A passwd line, not useradd: minimal bases lack it.
RUN sh /tmp/ensure-python.sh && rm /tmp/ensure-python.sh \
    && echo 'nexa:x:10001:10001:nexa:/home/nexa:/usr/sbin/nologin' >>/etc/passwd \
    && echo 'nexa:x:10001:' >>/etc/group \
    && mkdir -p /home/nexa && chown 10001:10001 /home/nexa
COPY --from=builder /opt/venv /opt/venv
COPY docker/healthcheck.py /opt/nexa/bin/
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/home/nexa \
    NEXA_ROUTER_HOST=0.0.0.0 NEXA_ROUTER_PORT=8000
USER 10001:10001
WORKDIR /home/nexa
EXPOSE 8000
# /health, not /ready: the router is healthy while it answers, even when a service is down (it then
# answers 503 for that modality); /ready reports the services.
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "/opt/nexa/bin/healthcheck.py", "router", "/health"]
CMD ["python3", "-m", "nexa_router"]
