# One entry point for people and CI. Every target installs what it needs on first use.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# DVC stages call `python`: make it the project's interpreter.
export PATH := $(abspath $(BIN)):$(PATH)

# No telemetry anywhere, and TensorFlow quiet on start-up.
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export SE_OFFLINE := true
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONUNBUFFERED := 1

.PHONY: setup run test lint clean help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## Create .venv and install the pinned stack and the package

$(VENV)/.installed: requirements.txt setup.py
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

run: setup  ## Run the whole DVC pipeline (offline demo data by default)
	$(BIN)/dvc repro

test: setup  ## Run the test suite
	$(PY) -m pytest

lint: setup  ## Static checks
	$(BIN)/ruff check .

clean:  ## Remove pipeline outputs (not the virtual environment)
	rm -rf artifacts logs scores.json mlflow.db mlruns
