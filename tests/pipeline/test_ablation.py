"""`deepfake-detector ablation` on a tiny copy of the repository: rows run as real DVC experiments, each
recorded; a failing row is recorded and the others still run; the table lands in docs; --resume skips
finished rows; the user's params.yaml and workspace stay as they were.

The run is shared and read-only: the tests read what it left.
"""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.pipeline.tiny_repo import REPO, make_tiny_repo, run

pytestmark = pytest.mark.slow

# Keys of today's params.yaml: the first two axes change training and scoring, the third makes one row fail
# fast (its data source does not exist) so that the run must carry on past it.
GRID = {
    "stages": ["cross_dataset", "export"],
    "axes": {
        "threshold": {"eer": {"evaluate.threshold": "eer"}, "fixed": {"evaluate.threshold": 0.5}},
        "jpeg": {"some": {"train.augment.jpeg_probability": 0.3}, "none": {"train.augment.jpeg_probability": 0.0}},
        "data": {"demo": {}, "missing": {"data.source": "no-such-folder"}},
    },
    "rows": [{"threshold": "eer", "jpeg": "some", "data": "demo"},
             {"threshold": "fixed", "jpeg": "none", "data": "demo"},
             {"threshold": "eer", "jpeg": "some", "data": "missing"}],
}
ROWS = ("eer_some_demo", "fixed_none_demo", "eer_some_missing")
# Smaller than the other pipeline tests' tiny repo: three rows train and export within a few minutes.
OVERRIDES = {"data.demo.images_per_class": 24, "train.fine_tune_epochs": 1, "evaluate.bootstrap": 100}
RECORDS = Path("artifacts/ablation")
DOC = Path("docs/generalization.md")


def ablation(root: Path, *arguments: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "deepfake_detector.cli", "ablation", *arguments], root)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def ablated(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, str]:
    """The tiny repository after `ablation run`, that run, and params.yaml's digest before it."""
    root = make_tiny_repo(tmp_path_factory.mktemp("repo"), OVERRIDES)
    (root / "config/ablation.yaml").write_text(yaml.safe_dump(GRID, sort_keys=False))
    # Experiments start from HEAD plus uncommitted changes; committed, the workspace is clean to compare with.
    committed = run(["git", "-c", "user.email=t@example.com", "-c", "user.name=test", "commit", "-qam", "grid"], root)
    assert committed.returncode == 0, committed.stderr
    params_before = digest(root / "params.yaml")
    return root, ablation(root, "run"), params_before


def record(root: Path, row: str) -> dict:
    return json.loads((root / RECORDS / f"{row}.json").read_text())


def test_each_row_is_recorded_with_its_own_params(ablated) -> None:
    root, result, _ = ablated
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]   # one row failed
    first, second = record(root, ROWS[0]), record(root, ROWS[1])
    assert (first["status"], second["status"]) == ("done", "done"), (first.get("error"), second.get("error"))
    assert first["params"]["evaluate"]["threshold"] == "eer" and second["params"]["evaluate"]["threshold"] == 0.5
    assert second["params"]["train"]["augment"]["jpeg_probability"] == 0.0
    assert first["experiment"]["rev"] != second["experiment"]["rev"]
    for entry in (first, second):
        assert 0.0 <= entry["in_distribution"]["roc_auc"] <= 1.0
        assert [family["name"] for family in entry["unseen"]["sets"]] == [
            extra["name"] for extra in yaml.safe_load((REPO / "params.yaml").read_text())["evaluate"]["extra_sets"]]
        assert entry["latency"]["p50_ms"] > 0 and entry["latency"]["reps"] >= 100
    assert first["latency"]["ratio_to_baseline"] == 1.0
    assert second["latency"]["ratio_to_baseline"] > 0


def test_each_row_used_its_own_params_in_its_experiment(ablated) -> None:
    """The row's scores came from its own experiment: the fixed threshold reached the evaluate stage."""
    root, _, _ = ablated
    shown = run([sys.executable, "-m", "dvc", "exp", "show", "--json"], root)
    assert shown.returncode == 0, shown.stderr
    assert all(name in shown.stdout for name in ROWS[:2])
    scores = run(["git", "show", f"{record(root, ROWS[1])['experiment']['rev']}:dvc.lock"], root)
    assert "evaluate.threshold: 0.5" in scores.stdout


def test_a_failing_row_is_recorded_and_the_run_goes_on(ablated) -> None:
    root, result, _ = ablated
    failed = record(root, ROWS[2])
    assert failed["status"] == "failed"
    assert "no-such-folder" in failed["error"]
    assert "failed: eer_some_missing" in result.stdout


def test_the_workspace_and_params_yaml_are_unchanged(ablated) -> None:
    root, _, params_before = ablated
    assert digest(root / "params.yaml") == params_before
    changed = run(["git", "status", "--porcelain", "--untracked-files=no"], root)
    assert changed.stdout.strip() == ""
    assert not (root / "scores.json").exists(), "the experiments ran in temporary copies, not the workspace"


def test_table_lists_every_row_and_check_notices_a_stale_page(ablated) -> None:
    root, _, _ = ablated
    written = ablation(root, "table")
    assert written.returncode == 0, written.stderr
    page = (root / DOC).read_text()
    block = page.split("<!-- ablation:start -->")[1].split("<!-- ablation:end -->")[0]
    assert all(f"`{row}`" in block for row in ROWS)
    assert "| row | threshold | jpeg | data | in-distribution AUC (95 % CI) |" in block
    assert "`eer_some_missing` failed" in block
    assert "(1.00x)" in block and "Latency: the float32 TFLite export" in block
    assert ablation(root, "table", "--check").returncode == 0
    (root / DOC).write_text(page.replace("(1.00x)", "(0.50x)"))
    stale = ablation(root, "table", "--check")
    assert stale.returncode == 1 and "not what the row records give" in stale.stderr


def test_resume_skips_finished_rows_and_retries_failed_ones(ablated) -> None:
    root, _, _ = ablated
    before = {row: (root / RECORDS / f"{row}.json").read_text() for row in ROWS}
    resumed = ablation(root, "run", "--resume")
    assert resumed.returncode == 1
    assert resumed.stderr.count("done in an earlier run, skipped") == 2
    assert all((root / RECORDS / f"{row}.json").read_text() == before[row] for row in ROWS[:2])
    assert record(root, ROWS[2])["finished"] >= json.loads(before[ROWS[2]])["finished"]
