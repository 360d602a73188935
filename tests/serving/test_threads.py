"""Interpreter threads sized to the machine: the usable cores shared out among the workers and the inferences
each runs at once, unless serve.num_threads says otherwise; cgroup quotas count as fewer cores."""
from __future__ import annotations

import logging

import pytest

from deepfake_detector.contracts.errors import ConfigError
from deepfake_detector.serving import concurrency
from deepfake_detector.serving.concurrency import inferences_per_worker, plan_threads, worker_shape
from deepfake_detector.serving.service import DetectionService
from deepfake_detector.utils import cpus
from deepfake_detector.utils.cpus import cgroup_cpu_quota, usable_cores
from tests.serving.conftest import serving_config

GUNICORN_2X4 = {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4"}
GUNICORN_2X8 = {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "8"}  # gunicorn.conf.py's defaults


@pytest.mark.parametrize(("cores", "environ", "expected"), [
    (8, {}, 8),                                              # dev server, predict command: one inference
    (8, GUNICORN_2X8, 1),                                    # 8 // (2 workers x 3 inferences; 4 wait, 1 for health)
    (16, {"WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4"}, 16),  # 16 // (1 x 1): 2 wait, 1 for health
    (2, GUNICORN_2X8, 1),                                    # never below one thread
    (4, {"GUNICORN_THREADS": "1"}, 4),                       # one thread still runs one inference
], ids=["in process", "2 workers x 8 threads", "1 worker x 4 threads", "more inferences than cores",
        "one thread"])
def test_default_threads_share_the_cores_among_concurrent_inferences(tmp_path, cores, environ, expected):
    plan = plan_threads(serving_config(tmp_path, num_threads=None), environ, cores=cores)
    assert plan.interpreter_threads == expected
    assert f"{cores} usable cores" in plan.reason


def test_max_in_flight_sets_the_inferences_per_worker(tmp_path):
    config = serving_config(tmp_path, num_threads=None, max_in_flight=2)
    assert inferences_per_worker(config, GUNICORN_2X4) == 2
    assert plan_threads(config, GUNICORN_2X4, cores=8).interpreter_threads == 2  # 8 // (2 x 2)


@pytest.mark.parametrize(("threads", "max_in_flight", "max_queued", "expected"), [
    ("8", None, 4, (3, 4)),   # the defaults: 3 run, 4 wait, 1 answers health checks
    ("4", None, 4, (1, 2)),   # the queue never takes the last prediction thread
    ("4", None, 0, (3, 0)),   # no queue: every thread but one runs a prediction
    (None, None, 4, (1, 0)),  # one thread (dev server, tests): one prediction, no queue
    ("8", 5, 4, (5, 2)),      # set slots: the queue gets the prediction threads they leave
    ("2", 5, 4, (5, 0)),      # set slots beyond the threads: no queue
])
def test_the_worker_threads_are_shared_among_slots_queue_and_health_checks(tmp_path, threads, max_in_flight,
                                                                              max_queued, expected):
    config = serving_config(tmp_path, max_in_flight=max_in_flight, max_queued=max_queued)
    shape = worker_shape(config, {} if threads is None else {"GUNICORN_THREADS": threads})
    assert (shape.max_in_flight, shape.max_queued) == expected
    assert inferences_per_worker(config, {} if threads is None else {"GUNICORN_THREADS": threads}) == expected[0]


def test_configured_num_threads_wins(tmp_path):
    plan = plan_threads(serving_config(tmp_path, num_threads=3), GUNICORN_2X4, cores=64)
    assert (plan.interpreter_threads, plan.reason) == (3, "serve.num_threads")


@pytest.mark.parametrize("value", ["zero", "0", "-2"])
def test_a_bad_server_shape_names_the_variable(tmp_path, value):
    with pytest.raises(ConfigError, match=f"WEB_CONCURRENCY='{value}'"):
        plan_threads(serving_config(tmp_path, num_threads=None), {"WEB_CONCURRENCY": value}, cores=4)


def test_service_loads_its_interpreters_with_the_planned_threads(project, monkeypatch, caplog):
    """The server's shape is the process's environment (gunicorn's post_fork hook sets it in each worker), not
    the overrides a caller passes."""
    monkeypatch.setattr(concurrency, "usable_cores", lambda: 12)
    for variable, value in GUNICORN_2X8.items():
        monkeypatch.setenv(variable, value)
    with caplog.at_level(logging.INFO, logger="deepfake_detector.serving.service"):
        service = DetectionService.from_config(serving_config(project, num_threads=None), environ={})
    assert service.predictor.num_threads == 2  # 12 // (2 x 3)
    assert "interpreter threads per inference: 2 (12 usable cores // (2 workers x 3 inferences" in caplog.text


@pytest.mark.parametrize(("files", "quota"), [
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
    ({"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
], ids=["v2 quota", "v2 no limit", "v1 quota", "v1 no limit", "no cgroup"])
def test_cgroup_cpu_quota_is_read_from_v2_or_v1_files(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_quota(tmp_path) == quota


def test_a_cpu_quota_caps_the_usable_cores_rounded_up(tmp_path, monkeypatch):
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: set(range(8)))
    assert usable_cores(tmp_path) == 8
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert usable_cores(tmp_path) == 2
    (tmp_path / "cpu.max").write_text("20000 100000\n")
    assert usable_cores(tmp_path) == 1
