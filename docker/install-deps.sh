#!/bin/sh
# Install the third-party dependencies of the given components into the active venv (builder stage),
# pinned by constraints.txt.
#
# CPU (ACCELERATOR=cpu): wheels in /wheelhouse are used when present (scripts/prepare-docker-host.sh
# puts the host-built llama-cpp-python and the CPU torch there), so the build neither compiles
# llama.cpp nor downloads PyPI's multi-GB CUDA torch. Without them CPU torch comes from $TORCH_INDEX
# and llama-cpp-python is compiled here with $LLAMA_CMAKE_ARGS.
# CUDA (ACCELERATOR=cuda): the wheelhouse is ignored; torch is PyPI's CUDA build, llama.cpp is
# compiled with $LLAMA_CMAKE_ARGS (compose.cuda.yaml: -DGGML_CUDA=on).
#
# usage: install-deps.sh COMPONENT_FOLDER...   (run in /src, where the pyproject.toml files are)
set -eu
: "${ACCELERATOR:=cpu}"
python3 /src/docker/requirements.py "$@" >/tmp/requirements.txt
has() { grep -qi "^$1" /tmp/requirements.txt; }
wheel() { ls /wheelhouse/$1 >/dev/null 2>&1; }

set -- -c /src/constraints.txt -r /tmp/requirements.txt
if [ "$ACCELERATOR" = cpu ]; then
    if wheel '*.whl'; then set -- "$@" --find-links /wheelhouse; fi
    if has torch && ! wheel 'torch-*+cpu-*.whl'; then
        set -- "$@" --extra-index-url "${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
    fi
fi
if has llama-cpp-python && { [ "$ACCELERATOR" != cpu ] || ! wheel 'llama_cpp_python-*.whl'; }; then
    sh /src/docker/ensure-python.sh gcc g++ make
    export CMAKE_ARGS="${LLAMA_CMAKE_ARGS:-}"
    set -- "$@" --no-binary llama-cpp-python
fi
echo "install-deps ($ACCELERATOR):" $(cat /tmp/requirements.txt)
pip install "$@"
