# The serving image: gunicorn + Flask around the LiteRT (TFLite) interpreter, and no TensorFlow.
#
# The export stage writes artifacts/export/ (model.tflite, its variants and model_card.json), and the
# `tflite` backend serves that folder with ai-edge-litert, numpy and Pillow alone: no TensorFlow, Keras,
# MLflow or DVC in the image (requirements-serve.txt). `make bench` measured why: a tflite process peaks at
# 78 MiB against 787 MiB for keras, and gives its first prediction after 0.3 s against 11.5 s; the image
# is also ~1.4 GB smaller. The Keras backend is unavailable here, which DEEPFAKE_DETECTOR_BACKEND=tflite says.
#
# The model, two ways (docs/deployment.md):
#   baked in:  docker build --build-arg MODEL_DIR=artifacts/export -t deepfake-detector .
#   mounted:   docker build -t deepfake-detector .   then
#              docker run -p 8080:8080 -v "$PWD/artifacts/export:/app/artifacts/export:ro" deepfake-detector
# Without either the server still starts: /healthz answers 200 and /readyz 503 until a model appears.

# ---- build: a virtual environment holding the serving dependencies, from wheels only -----------------
# Both stages: the official image's multi-platform index digest for this tag (as published on 2026-10-06); the
# tag is for people, the digest is what is pulled. Bump both together (docs/deployment.md).
FROM python:3.11.17-slim-bookworm@sha256:0a310eeecf4e1f5a0743f9a6520c90c88d089c903ca5fd283f501e3a805f5f89 AS build

COPY requirements-serve.txt requirements-faces.txt /tmp/
# Wheels only, so no compiler is needed; pip and setuptools leave the environment afterwards, since
# nothing installs packages at run time. The face detector's weights come from a wheel installed without
# its dependencies (TensorFlow), hash-checked: only its .tflite files are read.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
        -r /tmp/requirements-serve.txt \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
        --no-deps --require-hashes -r /tmp/requirements-faces.txt \
    && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools

# ---- runtime ----------------------------------------------------------------------------------------
FROM python:3.11.17-slim-bookworm@sha256:0a310eeecf4e1f5a0743f9a6520c90c88d089c903ca5fd283f501e3a805f5f89 AS runtime

# A folder of the build context copied to /app/artifacts/export. The default is an empty placeholder
# (deploy/no-model/), because COPY cannot be skipped: pass artifacts/export to bake the model in.
ARG MODEL_DIR=deploy/no-model

# The package runs from /app/src through PYTHONPATH rather than being pip-installed: the app finds
# config/, templates/ and static/ beside src/ (serving.settings.repository_root() is /app).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/src \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080 \
    DEEPFAKE_DETECTOR_BACKEND=tflite \
    DEEPFAKE_DETECTOR_EXPORT_DIR=/app/artifacts/export

# nginx in front of gunicorn (deploy/entrypoint.sh): Debian's package, from the base image's release. Not pinned to a
# version: Debian replaces a package's version with each security fix and drops the old one from its mirror, so a pin
# would break the build instead of taking the fix; the base image's digest fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid app --home-dir /nonexistent --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# Owned by root and read-only to the server: it writes nothing but its logs, to stderr.
COPY app.py gunicorn.conf.py params.yaml ./
COPY deploy/entrypoint.sh deploy/
COPY deploy/nginx/ deploy/nginx/
COPY config/ config/
COPY templates/ templates/
COPY static/ static/
COPY src/ src/
COPY ${MODEL_DIR}/ artifacts/export/
# Bytecode now, since the server may not write it (read-only files, and possibly a read-only root).
RUN python -m compileall -q src

USER 10001:10001
EXPOSE 8080

# /healthz through nginx: both processes answer. Readiness (/readyz, the model is loaded) is what deploy/deploy.sh
# waits for.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]

# nginx on PORT (8080) buffers whole requests for gunicorn on 127.0.0.1:APP_PORT (8000): see deploy/entrypoint.sh.
# docker stop: SIGTERM turns /readyz 503 and gives requests in flight gunicorn's graceful_timeout (20 s) to finish;
# stop the container with more than that (deploy/deploy.sh: docker stop --time 30; Docker's own default is 10 s).
STOPSIGNAL SIGTERM
CMD ["deploy/entrypoint.sh"]
