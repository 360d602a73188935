"""gunicorn settings for `gunicorn -c gunicorn.conf.py` (the app is app:app).

Sized for a small CPU box: each worker process loads its own model (preload_app is off, so a
worker never shares TensorFlow/LiteRT state across a fork) and answers with a few threads, since
inference releases the GIL. Environment: PORT (8080), WEB_CONCURRENCY (workers, 2),
GUNICORN_THREADS (threads per worker, 4), GUNICORN_TIMEOUT (seconds, 120), LOG_LEVEL (info).
"""
import os
from pathlib import Path

wsgi_app = "app:app"
chdir = str(Path(__file__).resolve().parent)

bind = [f"0.0.0.0:{int(os.environ.get('PORT', '8080'))}"]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
preload_app = False
# A worker loads its model before it accepts requests; an explain=true request can take seconds.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
# gthread workers wait out the whole grace period for idle keep-alive connections: keep it short
# so a container stops (and a deploy rolls) in seconds.
graceful_timeout = 10
keepalive = 5
# Heartbeat files on a RAM disk when there is one: a slow container disk must not look like a hung worker.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
logger_class = "deepfake_detector.serving.gunicorn_logging.JsonLogger"

# No runtime control socket: nothing on this box needs to steer the server.
control_socket_disable = True
