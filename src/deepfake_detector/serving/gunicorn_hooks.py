"""gunicorn server hooks that let /metrics count every worker: one clean folder for prometheus-client's
multiprocess files per server start, and a dead worker's live gauges (in-flight, model info) dropped.

Named in gunicorn.conf.py; they run in gunicorn's arbiter. prometheus-client is imported only inside the
hooks: imported before PROMETHEUS_MULTIPROC_DIR is set, it would stay in single-process mode in every
worker forked afterwards.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

_made_here: Path | None = None  # the temporary folder on_starting made, removed again by on_exit


def on_starting(server) -> None:
    """Before any worker starts: PROMETHEUS_MULTIPROC_DIR names an empty folder, a new temporary one unless the
    user chose one, whose stale files from an earlier run are removed. Not /dev/shm: Docker gives it 64 MB, and
    gunicorn's heartbeat files (worker_tmp_dir) must never find it full."""
    global _made_here
    chosen = os.environ.get(MULTIPROCESS_DIR_ENV)
    if chosen:
        folder = Path(chosen)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    else:
        folder = _made_here = Path(tempfile.mkdtemp(prefix="deepfake-detector-metrics-"))
        os.environ[MULTIPROCESS_DIR_ENV] = str(folder)
    server.log.info("metrics of all workers are kept in %s", folder)


def child_exit(server, worker) -> None:
    """A worker is gone: drop its live gauges; its counters and histograms still count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _made_here is not None:
        shutil.rmtree(_made_here, ignore_errors=True)
