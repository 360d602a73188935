#!/usr/bin/env bash
# Replace the running deepfake-detector container on this host (the EC2 instance) with IMAGE, and put the previous
# container back whenever the new one fails: the script exits 0 only when IMAGE is serving and has stayed up.
#
#   deploy/deploy.sh IMAGE        e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/deepfake-detector:<sha>
#                                 (or ...deepfake-detector@sha256:<digest>, as the log of an earlier deploy shows)
#
# The CD workflow's deploy job runs it after logging Docker in to ECR. Steps:
#   1. record the running container's image by digest (registry/repository@sha256:..., or the local image ID): a
#      tag such as :latest, or the same commit tag deployed again, may already name the new image after the pull;
#   2. pull IMAGE;
#   3. pre-flight, while the old container keeps serving: run IMAGE as <name>-candidate on 127.0.0.1:CANDIDATE_PORT
#      with the production settings, wait for /readyz, watch it for SETTLE_S seconds, remove it. A bad image, env
#      file or model mount fails here and production is not touched;
#   4. swap: rename the old container to <name>-previous and stop it (kept, not removed), run IMAGE as <name> on
#      HOST_PORT, wait for /readyz, watch it for SETTLE_S seconds;
#   5. remove <name>-previous.
# Why step 4 is a stop-then-start and not a traffic switch: clients (the load balancer or proxy in front) reach one
# published host port, Docker cannot re-publish a running container's port, and two containers cannot bind the same
# port, so the new container can bind HOST_PORT only once the old one has let go of it. The gap is one start of an
# image that has just passed step 3. From the moment the old container is stopped, every way out of the script
# (docker run fails, never ready, stopped or restarted within the settle period, an error, the job cancelled) goes
# through the EXIT trap, which removes the new container and runs `docker start` on the previous one (recreated from
# the recorded digest if it cannot start), then fails the job.
#
# Containers run with a read-only root filesystem, no capabilities and a restart policy. Settings, from the
# environment:
#   CONTAINER_NAME  container name (deepfake-detector)
#   HOST_PORT       host port published to the container's 8080 (8080)
#   CANDIDATE_PORT  loopback port of the pre-flight container (18081)
#   ENV_FILE        docker --env-file, used when the file exists (/etc/deepfake-detector.env): the
#                   DEEPFAKE_DETECTOR_* and gunicorn settings of this host, kept out of the image
#   MODEL_DIR       host folder mounted read-only on /app/artifacts/export, for images without a baked model
#   READY_RETRIES   /readyz attempts before giving up (30)
#   READY_DELAY_S   seconds between attempts, and between checks while settling (2)
#   SETTLE_S        seconds a ready container must stay running without a restart (20)
#   STOP_TIMEOUT_S  grace given to in-flight requests when the old container is stopped (30: above gunicorn's 20)
set -euo pipefail

image=${1:?usage: deploy.sh IMAGE}
name=${CONTAINER_NAME:-deepfake-detector}
host_port=${HOST_PORT:-8080}
candidate_port=${CANDIDATE_PORT:-18081}
env_file=${ENV_FILE:-/etc/deepfake-detector.env}
model_dir=${MODEL_DIR:-}
retries=${READY_RETRIES:-30}
delay=${READY_DELAY_S:-2}
settle_s=${SETTLE_S:-20}
stop_timeout=${STOP_TIMEOUT_S:-30}
candidate_name="${name}-candidate"
previous_name="${name}-previous"
ready_url="http://127.0.0.1:${host_port}/readyz"
candidate_url="http://127.0.0.1:${candidate_port}/readyz"

# `checking` while production is untouched, `swapping` from the moment the old container is stopped until the new
# one has settled, `deployed` after that. The EXIT trap rolls back in `swapping` only.
phase=checking
previous_image=""

log() {
  printf '[deploy] %s\n' "$*" >&2
}

fail() {
  log "FAILED: $*"
  exit 1
}

exists() {
  docker container inspect --format '{{.Id}}' "$1" >/dev/null 2>&1
}

remove() {
  docker container rm --force "$@" >/dev/null 2>&1 || true
}

image_digest() {
  # Container $1's image as a reference that never moves: registry/repository@sha256:... when the image came from a
  # registry (pullable on any host), else its local image ID (sha256:...). Nothing when there is no such container.
  local image_id repo_digests
  image_id=$(docker container inspect --format '{{.Image}}' "$1" 2>/dev/null) || return 0
  repo_digests=$(docker image inspect --format '{{join .RepoDigests " "}}' "$image_id" 2>/dev/null) || repo_digests=""
  repo_digests=${repo_digests%% *}
  printf '%s\n' "${repo_digests:-$image_id}"
}

run_container() {
  local container=$1 publish=$2 restart=$3 run_image=$4
  local options=(--detach --name "$container" --restart "$restart" --publish "${publish}:8080"
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges)
  if [[ -f $env_file ]]; then
    options+=(--env-file "$env_file")
  fi
  if [[ -n $model_dir ]]; then
    options+=(--volume "${model_dir}:/app/artifacts/export:ro")
  fi
  docker container run "${options[@]}" "$run_image" >/dev/null
}

is_up() {
  # Running and never restarted: with --restart, a container whose server dies comes back with a higher count
  # (docker run and docker start begin at 0).
  local state
  state=$(docker container inspect --format '{{.State.Running}} {{.RestartCount}}' "$1" 2>/dev/null) || return 1
  [[ $state == "true 0" ]]
}

is_ready() {
  curl --fail --silent --max-time 5 --output /dev/null "$1"
}

wait_until_ready() {
  local container=$1 url=$2 attempt
  for ((attempt = 1; attempt <= retries; attempt++)); do
    if is_ready "$url"; then
      log "$container is ready ($url, attempt $attempt)"
      return 0
    fi
    if ! is_up "$container"; then
      log "$container stopped or restarted before it was ready"
      return 1
    fi
    sleep "$delay"
  done
  log "$container is not ready after $retries attempts"
  return 1
}

stays_up() {
  # A server can answer /readyz once and then die (a worker crashing on its first requests, memory running out
  # after warm-up): it counts as deployed only after SETTLE_S seconds without a stop or a restart.
  local container=$1 url=$2 end=$((SECONDS + settle_s))
  log "watching $container for ${settle_s}s"
  while ((SECONDS < end)); do
    if ! is_up "$container"; then
      log "$container stopped or restarted within ${settle_s}s of being ready"
      return 1
    fi
    sleep "$delay"
  done
  if ! is_up "$container" || ! is_ready "$url"; then
    log "$container is no longer up and ready after ${settle_s}s"
    return 1
  fi
}

is_healthy() {
  # Ready, then still up after the settle period; on failure the container's last log lines go to the job log.
  if wait_until_ready "$1" "$2" && stays_up "$1" "$2"; then
    return 0
  fi
  log "last log lines of $1:"
  docker container logs --tail 40 "$1" >&2 || true
  return 1
}

clear_leftovers() {
  # A deploy killed outright (SIGKILL skips the EXIT trap) can leave its candidate, or the stopped previous
  # container with no <name> beside it: that one is the last good container, so it serves as <name> again.
  remove "$candidate_name"
  if exists "$previous_name"; then
    if exists "$name"; then
      log "removing $previous_name, left by an earlier deploy"
      remove "$previous_name"
    else
      log "restoring $previous_name, left by an interrupted deploy, as $name"
      docker container rename "$previous_name" "$name"
      docker container start "$name" >/dev/null
    fi
  fi
}

roll_back() {
  remove "$name"
  if [[ -z $previous_image ]]; then
    log "FAILED: $image is not serving and there was no previous container to roll back to: nothing is running"
    return
  fi
  log "rolling back to $previous_image"
  if docker container rename "$previous_name" "$name" && docker container start "$name" >/dev/null; then
    log "started the previous container $name again"
  else
    log "the previous container cannot be started; recreating $name from $previous_image"
    remove "$name"
    run_container "$name" "$host_port" unless-stopped "$previous_image" || true
  fi
  if wait_until_ready "$name" "$ready_url"; then
    log "FAILED: $image was not deployed; rolled back to $previous_image, which is serving"
  else
    log "FAILED: $image was not deployed, and the rollback to $previous_image is not ready either"
  fi
}

on_exit() {
  local status=$?
  # The rollback must run to its end: no error or second signal may cut it short.
  set +e
  trap '' INT TERM
  remove "$candidate_name"
  if [[ $phase == swapping ]]; then
    roll_back
    ((status != 0)) || status=1
  fi
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

clear_leftovers
previous_image=$(image_digest "$name")
log "deploying $image; running now: ${previous_image:-nothing}"

log "pulling $image"
docker image pull "$image" >/dev/null || fail "could not pull $image; $name was not touched"

log "pre-flight: starting $image as $candidate_name on 127.0.0.1:$candidate_port while $name keeps serving"
run_container "$candidate_name" "127.0.0.1:${candidate_port}" no "$image" \
  || fail "docker run of $image failed (env file, model mount, port $candidate_port?); $name was not touched"
is_healthy "$candidate_name" "$candidate_url" || fail "$image failed its pre-flight check; $name was not touched"
remove "$candidate_name"

if [[ -n $previous_image ]]; then
  docker container rename "$name" "$previous_name" || fail "could not rename $name to $previous_name; it keeps serving"
fi
# From here on every way out rolls back (the EXIT trap): the new container is removed, the previous one restarted.
phase=swapping
if [[ -n $previous_image ]]; then
  log "stopping $previous_name (kept until $image has settled, so that a rollback is a docker start)"
  docker container stop --time "$stop_timeout" "$previous_name" >/dev/null || fail "could not stop $previous_name"
fi
log "starting $image as $name on port $host_port"
run_container "$name" "$host_port" unless-stopped "$image" || fail "docker run of $image as $name failed"
is_healthy "$name" "$ready_url" || fail "$name ($image) did not become ready and stay up"
phase=deployed

remove "$previous_name"
log "deployed $image ($(image_digest "$name")), replacing ${previous_image:-nothing}"
