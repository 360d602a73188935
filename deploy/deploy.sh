#!/usr/bin/env bash
# Replace the running deepfake-detector container on this host (the EC2 instance) with IMAGE, and roll
# back to the image that was running before if the new one does not become ready.
#
#   deploy/deploy.sh IMAGE        e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/deepfake-detector:<sha>
#
# The CD workflow's deploy job runs it after logging Docker in to ECR. Steps: remember the image of the
# running container, pull IMAGE, replace the container, poll /readyz (bounded). When the new container is
# not ready in time it is removed, the previous image is started again with the same settings, and the
# script exits 1 so that the workflow run fails. Containers run with a read-only root filesystem, no
# capabilities and a restart policy. Settings, from the environment:
#   CONTAINER_NAME  container name (deepfake-detector)
#   HOST_PORT       host port published to the container's 8080 (8080)
#   ENV_FILE        docker --env-file, used when the file exists (/etc/deepfake-detector.env): the
#                   DEEPFAKE_DETECTOR_* and gunicorn settings of this host, kept out of the image
#   MODEL_DIR       host folder mounted read-only on /app/artifacts/export, for images without a baked model
#   READY_RETRIES   /readyz attempts before giving up (30)
#   READY_DELAY_S   seconds between attempts (2)
#   STOP_TIMEOUT_S  grace given to in-flight requests when a container is replaced (10)
set -euo pipefail

image=${1:?usage: deploy.sh IMAGE}
name=${CONTAINER_NAME:-deepfake-detector}
host_port=${HOST_PORT:-8080}
env_file=${ENV_FILE:-/etc/deepfake-detector.env}
model_dir=${MODEL_DIR:-}
retries=${READY_RETRIES:-30}
delay=${READY_DELAY_S:-2}
stop_timeout=${STOP_TIMEOUT_S:-10}
ready_url="http://127.0.0.1:${host_port}/readyz"

log() {
  printf '[deploy] %s\n' "$*" >&2
}

running_image() {
  # The image reference the container was started from (registry/repository:tag), or nothing.
  docker container inspect --format '{{.Config.Image}}' "$name" 2>/dev/null || true
}

remove_container() {
  # SIGTERM first so that requests in flight finish; gunicorn drops idle keep-alive connections at the timeout.
  docker container stop --time "$stop_timeout" "$name" >/dev/null 2>&1 || true
  docker container rm --force "$name" >/dev/null 2>&1 || true
}

start_container() {
  local run_image=$1
  local options=(--detach --name "$name" --restart unless-stopped --publish "${host_port}:8080"
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges)
  if [[ -f $env_file ]]; then
    options+=(--env-file "$env_file")
  fi
  if [[ -n $model_dir ]]; then
    options+=(--volume "${model_dir}:/app/artifacts/export:ro")
  fi
  remove_container
  docker container run "${options[@]}" "$run_image" >/dev/null
}

wait_until_ready() {
  local attempt
  for ((attempt = 1; attempt <= retries; attempt++)); do
    if curl --fail --silent --max-time 5 --output /dev/null "$ready_url"; then
      log "$name is ready ($ready_url, attempt $attempt)"
      return 0
    fi
    sleep "$delay"
  done
  log "$name is not ready after $retries attempts; its last log lines:"
  docker container logs --tail 40 "$name" >&2 || true
  return 1
}

previous=$(running_image)
log "deploying $image (running now: ${previous:-nothing})"
docker image pull "$image"
start_container "$image"
if wait_until_ready; then
  log "deployed $image"
  exit 0
fi

if [[ -z $previous || $previous == "$image" ]]; then
  remove_container
  log "FAILED: $image is not ready and there is no previous image to roll back to"
  exit 1
fi
log "rolling back to $previous"
start_container "$previous"
if wait_until_ready; then
  log "FAILED: $image is not ready; rolled back to $previous, which is serving"
else
  log "FAILED: $image is not ready, and neither is the rollback to $previous"
fi
exit 1
