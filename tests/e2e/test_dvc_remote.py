"""A DVC local-directory remote, for real: what one checkout pushes comes back bit for bit in a fresh
clone, and a pull from a remote that lacks the data fails loudly instead of leaving a half-empty tree."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from deepfake_detector.utils.files import sha256_file
from tests.pipeline.tiny_repo import make_tiny_repo, project_env

pytestmark = pytest.mark.slow

# The cheapest stages that put both a model file and a data folder (a .dir manifest) under DVC.
STAGES = ("ingest", "prepare_model")
MODEL = "artifacts/prepare_model/base_model.h5"
CACHED_OUTPUTS = (MODEL, "artifacts/data_ingestion/dataset", "artifacts/data_ingestion/index.csv")
GIT_IDENTITY = ("-c", "user.email=test@example.com", "-c", "user.name=test")


@dataclass(frozen=True)
class PushedRepo:
    root: Path
    remote: Path


def run_in(root: Path, *command: str, timeout: int = 600) -> subprocess.CompletedProcess:
    # MLflow logging is beside the point here and costs seconds per stage.
    env = {**project_env(root), "DEEPFAKE_DETECTOR_TRACKING": "0"}
    return subprocess.run(list(command), cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def check(root: Path, *command: str) -> subprocess.CompletedProcess:
    result = run_in(root, *command)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file inside the DVC-cached outputs of STAGES, by path relative to root."""
    hashes = {}
    for output in CACHED_OUTPUTS:
        path = root / output
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        hashes.update({str(f.relative_to(root)): sha256_file(f) for f in files if f.exists()})
    return hashes


@pytest.fixture(scope="module")
def pushed(tmp_path_factory) -> PushedRepo:
    """A tiny repo that ran STAGES, pushed them to a local-directory remote and committed the result."""
    root = make_tiny_repo(tmp_path_factory.mktemp("repo"))
    remote = tmp_path_factory.mktemp("remote")
    check(root, "dvc", "remote", "add", "-d", "storage", str(remote))
    check(root, "dvc", "repro", *STAGES)
    check(root, "dvc", "push", *STAGES)
    check(root, "git", "add", "dvc.lock", ".dvc/config")
    check(root, "git", *GIT_IDENTITY, "commit", "-qm", "outputs pushed to the remote")
    return PushedRepo(root=root, remote=remote)


def clone(pushed: PushedRepo, target: Path) -> Path:
    check(target.parent, "git", "clone", "-q", str(pushed.root), str(target))
    assert not (target / MODEL).exists(), "a git clone must not carry DVC outputs"
    return target


def test_pulled_outputs_are_bit_identical_to_the_pushed_ones(pushed: PushedRepo, tmp_path: Path) -> None:
    copy = clone(pushed, tmp_path / "clone")

    check(copy, "dvc", "pull", *STAGES)

    original = file_hashes(pushed.root)
    assert MODEL in original and len(original) > 80  # the model, the index and 80 demo images
    assert file_hashes(copy) == original


def test_pulled_clone_has_nothing_to_reproduce(pushed: PushedRepo, tmp_path: Path) -> None:
    copy = clone(pushed, tmp_path / "clone")
    check(copy, "dvc", "pull", *STAGES)

    status = check(copy, "dvc", "status", *STAGES)

    assert "Data and pipelines are up to date" in status.stdout, status.stdout


@pytest.mark.parametrize("remote_state", ["empty", "missing"])
def test_pull_from_a_remote_without_the_data_fails(pushed: PushedRepo, tmp_path: Path, remote_state: str) -> None:
    copy = clone(pushed, tmp_path / "clone")
    remote = tmp_path / "other-remote"
    if remote_state == "empty":
        remote.mkdir()
    check(copy, "dvc", "remote", "add", "--local", "other", str(remote))

    result = run_in(copy, "dvc", "pull", "-r", "other", *STAGES)

    assert result.returncode != 0, result.stdout + result.stderr
    assert "failed to pull data from the cloud" in result.stderr, result.stderr
    assert not (copy / MODEL).exists()
