#!/usr/bin/env bash
# Check a freshly built image before it is pushed: it holds no TensorFlow, runs as a non-root user, and a
# container of it, as locked down as in production, serves the baked-in model (/readyz, /api/v1/model).
#
#   deploy/smoke_test.sh IMAGE
#
# The CD workflow's build job runs it between `docker build` and `docker push`. Settings, from the
# environment: SMOKE_PORT (18080), READY_RETRIES (30), READY_DELAY_S (2).
set -euo pipefail

image=${1:?usage: smoke_test.sh IMAGE}
port=${SMOKE_PORT:-18080}
retries=${READY_RETRIES:-30}
delay=${READY_DELAY_S:-2}
name="deepfake-detector-smoke-$$"
base_url="http://127.0.0.1:${port}"

log() {
  printf '[smoke] %s\n' "$*" >&2
}

cleanup() {
  docker container rm --force "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT

docker container run --rm --entrypoint python "$image" -c \
  "import importlib.util, sys; sys.exit('TensorFlow is in the image' if importlib.util.find_spec('tensorflow') else 0)"
user=$(docker image inspect --format '{{.Config.User}}' "$image")
if [[ -z $user || $user == root || $user == 0 || $user == 0:* ]]; then
  log "the image runs as root (USER '${user}')"
  exit 1
fi

docker container run --detach --name "$name" --read-only --tmpfs /tmp --cap-drop ALL \
  --publish "127.0.0.1:${port}:8080" "$image" >/dev/null
for ((attempt = 1; attempt <= retries; attempt++)); do
  if curl --fail --silent --max-time 5 --output /dev/null "$base_url/readyz"; then
    break
  fi
  if ((attempt == retries)); then
    log "$image is not ready after $retries attempts; its logs:"
    docker container logs "$name" >&2 || true
    exit 1
  fi
  sleep "$delay"
done
curl --fail --silent --show-error --max-time 10 "$base_url/api/v1/model" >/dev/null
size=$(docker image inspect --format '{{.Size}}' "$image")
log "$image: no TensorFlow, user $user, ready and serving its model; $((size / 1000000)) MB uncompressed"
