"""Stage entry points and the CLI: a configuration mistake stops them before any work is done."""
from pathlib import Path

import yaml

from tests.pipeline.tiny_repo import make_tiny_repo, run


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
    assert "invalid choice: 'deploy'" in result.stderr
