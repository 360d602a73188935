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

.PHONY: setup setup-browser run serve test lint bench results ablation clean help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## Create .venv and install the pinned stack and the package

$(VENV)/.installed: requirements.txt setup.py
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# The browser test drives Debian's Chromium; as root this installs it, otherwise it says how.
setup-browser:  ## Install headless Chromium and its WebDriver (Debian packages) for the browser test
	@if { command -v chromium || command -v google-chrome; } >/dev/null && command -v chromedriver >/dev/null; then \
		echo "a Chromium browser and chromedriver are present"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver >/dev/null && echo "installed chromium and chromium-driver"; \
	else \
		echo "run: sudo apt-get install chromium chromium-driver (the browser test is skipped without them)"; \
	fi

run: setup  ## Run the whole DVC pipeline (offline demo data by default)
	$(BIN)/dvc repro

serve: setup  ## Serve the web page and JSON API with gunicorn (http://localhost:8080, PORT to change)
	$(BIN)/deepfake-detector serve

bench: setup  ## Speed and memory benchmarks on the exported model (bench/results.*, docs/benchmarks.md tables)
	$(BIN)/dvc repro export
	$(BIN)/deepfake-detector bench --out bench --update-readme docs/benchmarks.md

results: setup  ## Write README's results tables from the outputs dvc.lock records (after make run)
	$(BIN)/deepfake-detector results

ablation: setup  ## Run config/ablation.yaml's rows as DVC experiments (resuming), then write docs/generalization.md's table
	$(BIN)/deepfake-detector ablation run --resume
	$(BIN)/deepfake-detector ablation table

test: setup  ## Run the test suite
	$(PY) -m pytest

lint: setup  ## Static checks: ruff, hadolint (Dockerfile), actionlint (workflows), shellcheck (deploy scripts)
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/actionlint
	$(BIN)/shellcheck deploy/*.sh

clean:  ## Remove pipeline outputs (not the virtual environment)
	rm -rf artifacts logs scores.json export_metrics.json mlflow.db mlruns bench
