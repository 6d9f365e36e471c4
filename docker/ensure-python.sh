#!/bin/sh
# Install, with apt, python3 + venv where the base image lacks them (the CUDA base images), plus the
# packages named as arguments. On python:3.11-slim-bookworm with no arguments it does nothing.
set -eu
packages="$*"
python3 -c 'import ensurepip' 2>/dev/null || packages="python3 python3-venv $packages"
if [ -n "$packages" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086  # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
    rm -rf /var/lib/apt/lists/*
fi
