"""A copy of the repository with params shrunk so that the whole pipeline runs in about a minute."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

TINY_PARAMS = {
    "data.demo.images_per_class": 40,
    "data.demo.image_size": 96,
    "data.min_image_size": 32,
    "model.alpha": 0.35,
    "model.image_size": 64,
    "train.batch_size": 16,
    "train.fine_tune_epochs": 2,
    # As planned: 2 epochs of 4 steps (train.min_steps would stretch them to 35 epochs).
    "train.min_steps": 0,
    "evaluate.batch_size": 32,
    # A two-epoch model on 80 images may sit at chance, where quantization noise reorders its
    # near-equal scores: the AUC gate is tested on a model with known scores (test_exporter.py).
    # One variant keeps the stage quick; test_dvc_pipeline.py asks for all of them.
    "export.variants": ["float32"],
    "export.max_auc_drop": 1.0,
    "evaluate.bootstrap": 200,
    "evaluate.extra_demo_images_per_class": 12,  # six demo families to score
    # One severity per perturbation still runs every code path of the robustness stage.
    "evaluate.robustness": {"jpeg": [50], "rescale": [0.5], "blur": [1.0], "noise": [5], "crop": [0.75],
                            "brightness_contrast": [0.2]},
}


def set_param(params: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value


def make_tiny_repo(target: Path, overrides: dict | None = None) -> Path:
    """Copy the files git would ship (tracked or not ignored) into target, init git and DVC state."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=REPO, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file() and not name.startswith("tests/"):
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    params_path = target / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    for dotted, value in {**TINY_PARAMS, **(overrides or {})}.items():
        set_param(params, dotted, value)
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.email=t@example.com", "-c", "user.name=test", "commit", "-qm", "copy"]):
        subprocess.run(command, cwd=target, check=True)
    return target


def project_env(root: Path) -> dict[str, str]:
    """Environment in which `python` and `dvc` are this interpreter's, pointing at root's sources."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(root / "src")
    env.update(DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1",
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


# Clearly shorter than pytest's own per-test timeout (pyproject.toml), so a stuck command fails here,
# with its command line, rather than as a bare pytest timeout.
COMMAND_TIMEOUT_S = 900


def run(command: list[str], root: Path, timeout: int = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=root, env=project_env(root), capture_output=True, text=True,
                          timeout=timeout)


def copy_repo(source: Path, target: Path) -> Path:
    """A copy of a tiny repo that has run, outputs, DVC cache and MLflow store included, that a test may
    change without touching the original: the copied MLflow store points at the copy's artifact folder."""
    shutil.copytree(source, target, symlinks=True)
    old, new = source.resolve().as_uri(), target.resolve().as_uri()
    with sqlite3.connect(target / "mlflow.db") as connection:
        connection.execute("UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?)", (old, new))
        connection.execute("UPDATE runs SET artifact_uri = replace(artifact_uri, ?, ?)", (old, new))
    connection.close()
    return target
