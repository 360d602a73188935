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

.PHONY: setup setup-browser run serve serve-proxy test lint bench results ablation clean help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## Create .venv and install the pinned stack and the package

$(VENV)/.installed: requirements.txt requirements-faces.txt setup.py
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-faces.txt
	touch $@

# The browser test drives Debian's Chromium, and the hostile-load and entry-point tests run nginx in front of gunicorn
# as the container does; as root this installs what is missing, otherwise it says how.
setup-browser:  ## Install headless Chromium, its WebDriver and nginx (Debian packages) for the browser and proxy tests
	@missing=""; \
	{ command -v chromium || command -v google-chrome; } >/dev/null && command -v chromedriver >/dev/null \
		|| missing="chromium chromium-driver"; \
	PATH="$$PATH:/usr/sbin:/sbin" command -v nginx >/dev/null || missing="$$missing nginx"; \
	if [ -z "$$missing" ]; then \
		echo "a Chromium browser, chromedriver and nginx are present"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$$missing >/dev/null && echo "installed:$$missing"; \
	else \
		echo "run: sudo apt-get install$$missing (the tests that need them are skipped without them)"; \
	fi

run: setup  ## Run the whole DVC pipeline (offline demo data by default)
	$(BIN)/dvc repro

serve: setup  ## Serve the web page and JSON API with gunicorn (http://localhost:8080, PORT to change)
	$(BIN)/deepfake-detector serve

# As the container runs: nginx on PORT (8080) buffering whole requests for gunicorn on 127.0.0.1:APP_PORT (8000).
serve-proxy: setup  ## Serve behind nginx as the container does (deploy/entrypoint.sh; needs nginx)
	PATH="$$PATH:/usr/sbin" PROXY_RUN_DIR="$${PROXY_RUN_DIR:-$$(mktemp -d)}" deploy/entrypoint.sh

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
