"""The `deepfake-detector` command: every subcommand answers --help with its options without loading TensorFlow,
check-config shows every entity or the configuration's problems, and each subcommand reaches its module."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deepfake_detector import __version__, cli
from deepfake_detector.config import ConfigurationManager
from tests.tiny_served_model import REPO_ROOT, copy_config

OPTIONS = {
    "run": ["STAGE", "prepare_model", "cross_dataset", "--root"],
    "check-config": ["ENTITY", "--root"],
    "predict": ["PATH", "--recursive", "--format", "--output", "--explain", "--root"],
    "serve": ["--port", "--workers", "--threads", "--timeout", "--root"],
    "bench": ["--out", "--model-file", "--export-dir", "--quick", "--skip-training", "--update-readme", "--root"],
    "fetch-model": ["--name", "--alias", "--out", "--tracking-uri", "--check", "--root"],
    "screenshot": ["HTML_FILE", "PNG_FILE", "--width"],
    "results": ["--readme", "--check", "--root"],
    "ablation": ["ACTION", "run", "table", "--root"],
}


def run_cli(capsys, *arguments: str) -> tuple[int, str, str]:
    """The command in this process: (exit code, stdout, stderr), whether it returned or exited."""
    try:
        code = cli.main(list(arguments))
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def config_root(tmp_path) -> Path:
    return copy_config(tmp_path / "project")


def test_the_help_lists_every_command(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in OPTIONS:
        assert command in out


def test_no_command_prints_the_help_and_exits_2(capsys):
    code, _, err = run_cli(capsys)
    assert code == 2
    assert "commands:" in err and "check-config" in err


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"deepfake-detector {__version__}"


@pytest.mark.parametrize("command", list(OPTIONS))
def test_each_command_help_names_its_options(capsys, command):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    assert out.startswith(f"usage: deepfake-detector {command}")
    missing = [option for option in OPTIONS[command] if option not in out]
    assert not missing, f"{command} --help does not mention {missing}"


def test_help_of_every_command_imports_no_tensorflow():
    """Asking a command how to use it must stay instant, also on a serving image without TensorFlow."""
    script = (
        "import sys\n"
        "from deepfake_detector.cli import main\n"
        f"for command in {list(OPTIONS)!r}:\n"
        "    try:\n"
        "        main([command, '--help'])\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code == 0, command\n"
        "loaded = sorted(name for name in ('tensorflow', 'keras', 'tf_keras') if name in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")})
    assert result.returncode == 0, result.stderr


def test_check_config_shows_every_entity(capsys, config_root):
    code, out, _ = run_cli(capsys, "--root", str(config_root), "check-config")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"root: {config_root.resolve()}" and lines[-1] == "configuration OK"
    shown = yaml.safe_load("\n".join(lines[1:-1]))
    assert list(shown) == list(ConfigurationManager(root=config_root).all_entities())
    assert {"robustness", "cross_dataset", "shortcut_audit", "report", "tracking"} <= set(shown)  # once left out
    # Values as a component receives them; paths relative to the root; nested entities as nested mappings.
    assert shown["training"]["model_file"] == "artifacts/training/model.h5"
    assert shown["training"]["augment"]["enabled"] is True
    assert shown["serving"]["face_margin"] == 0.2
    assert shown["cross_dataset"]["extra_sets"][0]["source"] == "demo:b"


def test_check_config_shows_only_the_entities_asked_for(capsys, config_root):
    code, out, _ = run_cli(capsys, "check-config", "serving", "tracking", "--root", str(config_root))
    assert code == 0
    shown = yaml.safe_load("\n".join(out.splitlines()[1:-1]))
    assert list(shown) == ["serving", "tracking"]


def test_check_config_suggests_the_entity_meant(capsys, config_root):
    code, _, err = run_cli(capsys, "--root", str(config_root), "check-config", "traning")
    assert code == 2
    assert "unknown entity 'traning' (did you mean 'training'?)" in err


def test_check_config_with_a_bad_params_file_exits_2_naming_the_key(capsys, config_root):
    params_file = config_root / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["train"]["batch_size"] = "big"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    code, out, err = run_cli(capsys, "--root", str(config_root), "check-config")
    assert code == 2
    assert "params.yaml: train.batch_size" in err and "'big'" in err
    assert "configuration OK" not in out


class Exec(Exception):
    """Raised in place of os.execve so the test can see what would have run."""


@pytest.fixture
def exec_call(monkeypatch) -> dict:
    call = {}

    def fake_execve(path, argv, environment):
        call.update(path=path, argv=argv, environment=environment)
        raise Exec

    monkeypatch.setattr("os.execve", fake_execve)
    return call


def test_serve_runs_gunicorn_with_the_repository_config(capsys, exec_call, monkeypatch):
    monkeypatch.setenv("GUNICORN_THREADS", "7")
    with pytest.raises(Exec):
        cli.main(["--root", str(REPO_ROOT), "serve", "--port", "9000", "--workers", "3"])
    assert exec_call["argv"] == [sys.executable, "-m", "gunicorn", "--config", str(REPO_ROOT / "gunicorn.conf.py"),
                                 "app:app"]
    environment = exec_call["environment"]
    assert environment["PORT"] == "9000" and environment["WEB_CONCURRENCY"] == "3"
    assert environment["GUNICORN_THREADS"] == "7"  # an option left out keeps the environment's value


def test_serve_outside_the_repository_exits_2(capsys, exec_call, tmp_path):
    code, _, err = run_cli(capsys, "--root", str(tmp_path), "serve")
    assert code == 2 and "no gunicorn.conf.py" in err and not exec_call


def test_serve_refuses_zero_workers(capsys, exec_call):
    code, _, err = run_cli(capsys, "serve", "--workers", "0")
    assert code == 2 and "must be at least 1" in err and not exec_call


def test_fetch_model_check_reaches_the_verifier(capsys, tmp_path):
    code, _, err = run_cli(capsys, "fetch-model", "--check", str(tmp_path))
    assert code == 1
    assert "model_card.json" in err


def test_fetch_model_outside_a_checkout_needs_name_and_out(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--root", str(tmp_path), "fetch-model")
    assert code == 2 and "--name and --out are needed" in err


def test_bench_without_a_model_exits_2_before_measuring(capsys, tmp_path):
    code, _, _ = run_cli(capsys, "bench", "--root", str(tmp_path), "--quick", "--skip-training",
                         "--model-file", "absent.h5", "--export-dir", "absent")
    assert code == 2
    assert not (tmp_path / "bench").exists()


def test_screenshot_of_a_missing_report_exits_2(capsys, tmp_path):
    code, _, err = run_cli(capsys, "screenshot", str(tmp_path / "index.html"), str(tmp_path / "report.png"))
    assert code == 2 and "no report to screenshot" in err
    assert not (tmp_path / "report.png").exists()


def test_run_without_stage_names_runs_every_stage_in_order(capsys, monkeypatch):
    from deepfake_detector.pipeline import runner
    from deepfake_detector.pipeline.stages import STAGES

    called = []
    monkeypatch.setattr(runner, "run_stages", lambda stages, root=None: called.append([n for n, _ in stages]) or 0)
    code, _, err = run_cli(capsys, "run")
    assert code == 0, err
    assert called == [list(STAGES)]


def test_run_names_the_closest_stage_for_a_typo(capsys):
    code, _, err = run_cli(capsys, "run", "evaluat")
    assert code == 2
    assert "unknown stage 'evaluat'" in err and "did you mean 'evaluate'" in err


def test_run_keeps_dag_order_and_runs_each_stage_once_whatever_the_order_named(capsys, monkeypatch):
    from deepfake_detector.pipeline import runner

    called = []
    monkeypatch.setattr(runner, "run_stages", lambda stages, root=None: called.append([n for n, _ in stages]) or 0)
    code, _, err = run_cli(capsys, "run", "evaluate", "train", "evaluate")
    assert code == 0, err
    assert called == [["train", "evaluate"]]
