#!/usr/bin/env bash
# The container's entry point: nginx on $PORT in front of gunicorn on 127.0.0.1:$APP_PORT, in one container.
#
# nginx buffers every request whole (deploy/nginx/nginx.conf.template), so a slow or stalled client never holds
# one of gunicorn's threads, and it caps bodies, header and body time and connections per client. Both run as the
# image's user; nginx's pid file and body buffers go to $PROXY_RUN_DIR (on the container's /tmp tmpfs).
#
# Either process exiting stops the other and the container (its restart policy brings it back). docker stop
# (SIGTERM) stops both gracefully at once: nginx (SIGQUIT) closes its port and its idle connections to gunicorn
# but passes on the answers of requests in flight; gunicorn (SIGTERM) turns /readyz 503 and lets those requests
# finish (graceful_timeout, 20 s). Stopping gunicorn alone would leave nginx's idle keep-alive connections open,
# and gunicorn 26 waits the whole graceful_timeout out for them.
#
# Settings, from the environment: PORT (8080, where clients connect), APP_PORT (8000, gunicorn, loopback only),
# PROXY_RUN_DIR (/tmp/nginx); gunicorn's own as in gunicorn.conf.py.
set -euo pipefail

port=${PORT:-8080}
app_port=${APP_PORT:-8000}
run_dir=${PROXY_RUN_DIR:-/tmp/nginx}

python -m deepfake_detector.deploy.proxy_config --listen "0.0.0.0:${port}" --upstream "127.0.0.1:${app_port}" \
  --run-dir "$run_dir"

gunicorn --config gunicorn.conf.py --bind "127.0.0.1:${app_port}" app:app &
gunicorn_pid=$!
nginx -p "$run_dir" -c "$run_dir/nginx.conf" -e stderr -g 'daemon off;' &
nginx_pid=$!

# shellcheck disable=SC2329  # run by the trap below
shut_down() {
  trap '' TERM INT
  kill -QUIT "$nginx_pid" 2>/dev/null || true
  kill -TERM "$gunicorn_pid" 2>/dev/null || true
  wait "$gunicorn_pid" "$nginx_pid" || true
  exit 0
}
trap shut_down TERM INT

status=0
wait -n "$gunicorn_pid" "$nginx_pid" || status=$?
printf '[entrypoint] %s exited (status %d); stopping the container\n' \
  "$(kill -0 "$gunicorn_pid" 2>/dev/null && echo nginx || echo gunicorn)" "$status" >&2
kill -TERM "$gunicorn_pid" "$nginx_pid" 2>/dev/null || true
wait || true
exit $((status == 0 ? 1 : status))
