# Two commands do all the set-up on a fresh machine: `make run` (the main job) and `make test`.
# Both create .venv when needed, install the CPU build of torch first (so pip never pulls a CUDA
# build) and then the project with its dev extras.
#   make test      the fast set (everything not marked slow)
#   make test-all  every test, slow ones included: what CI runs (.ci/run)
# The tests run through the venv's `pytest` script, not `python -m pytest`: the latter puts the current
# folder on sys.path, where the source tree would shadow an installed (non-editable) package.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export HF_EVALUATE_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: run test test-all lint clean

$(BIN)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

run: $(BIN)/.installed
	$(BIN)/chemactor pipeline recipes/quickstart.yaml

# pytest exits 5 when it collected nothing: make fails on it like on any other non-zero status
test: $(BIN)/.installed
	$(BIN)/pytest -m "not slow"

test-all: $(BIN)/.installed
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) outputs
