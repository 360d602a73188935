"""`deepfake-detector ablation`: its help loads no TensorFlow, a bad grid stops it with exit 2 before any
experiment, and `table` / `table --check` write and judge the page (no DVC run needed: records by hand)."""
import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deepfake_detector import cli
from deepfake_detector.utils.files import write_json_atomic
from tests.unit.test_ablation_table import PAGE, done

REPO = Path(__file__).resolve().parents[2]
GRID = {"stages": ["evaluate"], "axes": {"dropout": {"low": {"model.dropout": 0.1}, "high": {"model.dropout": 0.5}}}}


pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def root(tmp_path) -> Path:
    """A folder with the repository's params.yaml and dvc.yaml, a grid, one row record and a page."""
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / "config").mkdir()
    (tmp_path / "config/ablation.yaml").write_text(yaml.safe_dump(GRID, sort_keys=False))
    write_json_atomic(tmp_path / "artifacts/ablation/low.json", done("low", "low"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/generalization.md").write_text(PAGE)
    return tmp_path


def ablation(capsys, root: Path, *arguments: str) -> tuple[int, str, str]:
    code = cli.main(["--root", str(root), "ablation", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_lists_both_actions_and_loads_no_tensorflow():
    script = ("import sys\nfrom deepfake_detector.cli import main\n"
              "for argv in (['ablation', '--help'], ['ablation', 'run', '--help'], ['ablation', 'table', '--help']):\n"
              "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
              "print('tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.splitlines()[-1] == "False"
    assert "--rows ROW,ROW" in result.stdout and "--resume" in result.stdout and "--check" in result.stdout


def test_a_bad_grid_exits_2_naming_the_key_before_running_anything(capsys, root):
    typo = copy.deepcopy(GRID)
    typo["axes"]["dropout"]["low"] = {"model.dropot": 0.1}
    (root / "config/ablation.yaml").write_text(yaml.safe_dump(typo))
    code, _, err = ablation(capsys, root, "run")
    assert code == 2
    assert "'model.dropot' is not a key of params.yaml (did you mean 'model.dropout'?)" in err
    assert not (root / "artifacts/ablation/logs").exists()


def test_an_unknown_row_exits_2(capsys, root):
    code, _, err = ablation(capsys, root, "run", "--rows", "low,medium")
    assert code == 2 and "no row 'medium'" in err


def test_table_writes_the_page_and_check_then_passes_until_a_record_changes(capsys, root):
    assert ablation(capsys, root, "table", "--check")[0] == 1
    code, out, _ = ablation(capsys, root, "table")
    assert code == 0 and "Updated the ablation table" in out
    page = (root / "docs/generalization.md").read_text()
    assert "| `low` | low | 0.9912 (0.9800 – 1.0000) |" in page and "`config/ablation.yaml`" in page
    assert ablation(capsys, root, "table", "--check")[0] == 0
    write_json_atomic(root / "artifacts/ablation/high.json", done("high", "high"))
    code, _, err = ablation(capsys, root, "table", "--check")
    assert code == 1 and "+| `high` | high |" in err


def test_table_without_records_exits_2(capsys, root):
    (root / "artifacts/ablation/low.json").unlink()
    code, _, err = ablation(capsys, root, "table")
    assert code == 2 and "no record of any row" in err
