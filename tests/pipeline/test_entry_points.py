"""Stage entry points and the CLI: a configuration mistake stops them before any work is done; the old
`python -m` entry points still work; `serve` runs the real gunicorn."""
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.pipeline.tiny_repo import REPO, make_tiny_repo, project_env, run
from tests.servers import start_on_a_free_port


def misspell_epochs(root: Path) -> None:
    params_path = root / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["train"]["fine_tune_epoch"] = params["train"].pop("fine_tune_epochs")
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))


def test_stage_with_misspelt_param_exits_with_suggestion_and_writes_nothing(tmp_path: Path) -> None:
    root = make_tiny_repo(tmp_path)
    misspell_epochs(root)
    result = run(["python", "-m", "deepfake_detector.pipeline.ingest"], root)
    assert result.returncode == 2
    assert ("params.yaml: unknown key 'train.fine_tune_epoch' (did you mean 'train.fine_tune_epochs'?)"
            in result.stderr)
    assert not (root / "artifacts").exists()


def test_cli_check_config_reports_the_misspelling(tmp_path: Path) -> None:
    root = make_tiny_repo(tmp_path)
    misspell_epochs(root)
    result = run(["python", "-m", "deepfake_detector.cli", "check-config"], root)
    assert result.returncode == 2
    assert "did you mean 'train.fine_tune_epochs'?" in result.stderr


def test_cli_check_config_accepts_the_shipped_files(tmp_path: Path) -> None:
    root = make_tiny_repo(tmp_path)
    result = run(["python", "-m", "deepfake_detector.cli", "check-config"], root)
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def test_cli_refuses_an_unknown_stage(tmp_path: Path) -> None:
    root = make_tiny_repo(tmp_path)
    result = run(["python", "-m", "deepfake_detector.cli", "run", "deploy"], root)
    assert result.returncode == 2
    assert "unknown stage 'deploy'" in result.stderr and "stages: ingest, frames, validate" in result.stderr


@pytest.mark.parametrize(("module", "options"), [
    ("deepfake_detector.cli", ["run", "check-config", "predict", "serve", "bench", "fetch-model", "screenshot"]),
    ("deepfake_detector.benchmarks", ["--root", "--out", "--quick", "--skip-training", "--update-readme"]),
    ("deepfake_detector.deploy.fetch_model", ["--root", "--name", "--alias", "--out", "--check"]),
    ("deepfake_detector.report_screenshot", ["HTML_FILE", "PNG_FILE", "--width"]),
])
def test_module_entry_points_still_answer(module: str, options: list[str]) -> None:
    """CI, DVC and the docs call these with `python -m`; they share their options with the CLI's subcommands."""
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120,
                            env=project_env(REPO))
    assert result.returncode == 0, result.stderr
    assert all(option in result.stdout for option in options), result.stdout


def test_serve_answers_on_the_chosen_port_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`deepfake-detector serve` becomes gunicorn itself: it listens where --port says, and a SIGTERM (docker stop,
    Ctrl-C) reaches gunicorn's arbiter, which shuts down cleanly."""
    environment = {**project_env(REPO), "DEEPFAKE_DETECTOR_MODEL": str(tmp_path / "absent.h5"),
                   "DEEPFAKE_DETECTOR_EXPORT_DIR": str(tmp_path / "absent")}  # no model: starts in a second

    chosen: list[int] = []

    def serve_on(port: int) -> list[str]:
        chosen.append(port)
        return [sys.executable, "-m", "deepfake_detector.cli", "--root", str(REPO), "serve", "--port", str(port),
                "--workers", "1"]

    server = start_on_a_free_port(serve_on, tmp_path / "serve.log", env=environment, cwd=tmp_path)
    try:
        assert server.port == chosen[-1]
        server.wait_for("/healthz")
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0, server.log(3000)
    finally:
        server.stop(signal.SIGKILL)
    log = server.log()
    assert f"Listening at: http://0.0.0.0:{server.port}" in log and log.count("Booting worker") == 1
