"""gunicorn settings for `gunicorn -c gunicorn.conf.py` (the app is app:app).

Sized for a small CPU box: each worker process loads its own model (preload_app is off, so a
worker never shares TensorFlow/LiteRT state across a fork) and answers with a few threads, since
inference releases the GIL. Environment: PORT (8080), WEB_CONCURRENCY (workers, 2),
GUNICORN_THREADS (threads per worker, 8: 3 run predictions, 4 wait for a slot, 1 answers health checks; see
serving/concurrency.py), GUNICORN_TIMEOUT (seconds, 120), GUNICORN_GRACEFUL_TIMEOUT (seconds a stopping worker
drains, 20), LOG_LEVEL (info).
"""
import os
from pathlib import Path

wsgi_app = "app:app"
chdir = str(Path(__file__).resolve().parent)

bind = [f"0.0.0.0:{int(os.environ.get('PORT', '8080'))}"]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
preload_app = False
# A worker loads its model before it accepts requests; an explain=true request can take seconds.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
# Stopping (SIGTERM): each worker's /readyz turns 503 at once (serving/shutdown.py), it stops accepting, and its
# requests in flight get graceful_timeout seconds to finish. This must stay below the container's stop timeout
# (deploy/deploy.sh: docker stop --time 30; compose: stop_grace_period), or Docker's SIGKILL cuts the drain short.
# gunicorn 26's gthread worker also waits the whole period out while an idle keep-alive connection is open, so a
# stop takes up to this long even when nothing is in flight.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
post_worker_init = "deepfake_detector.serving.shutdown.post_worker_init"


def post_fork(server, worker):
    """Tell the app in this worker the server's real shape (command-line --workers and --threads included), read by
    serving/concurrency.py: serve.max_in_flight null means threads - 1 - serve.max_queued predictions at once (a
    thread stays free for /healthz and /readyz), and the interpreter threads are the cores shared out among all those
    predictions."""
    os.environ["GUNICORN_THREADS"] = str(worker.cfg.threads)
    os.environ["WEB_CONCURRENCY"] = str(worker.cfg.workers)


# A worker restarts after about this many requests, so memory that large uploads fragmented is given back; the
# jitter keeps the workers from restarting together. Each restart drains like a stop (above) and loads the model
# again (well under a second for TFLite), so restarts stay rare.
max_requests = 10000
max_requests_jitter = 1000
# Heartbeat files on a RAM disk when there is one: a slow container disk must not look like a hung worker.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
logger_class = "deepfake_detector.serving.gunicorn_logging.JsonLogger"

# No runtime control socket: nothing on this box needs to steer the server.
control_socket_disable = True

# /metrics counts every worker (docs/export-and-serving.md#metrics): a clean PROMETHEUS_MULTIPROC_DIR per start,
# a dead worker's live gauges dropped, the temporary folder removed at exit.
on_starting = "deepfake_detector.serving.gunicorn_hooks.on_starting"
child_exit = "deepfake_detector.serving.gunicorn_hooks.child_exit"
on_exit = "deepfake_detector.serving.gunicorn_hooks.on_exit"
