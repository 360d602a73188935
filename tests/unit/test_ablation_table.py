"""docs/generalization.md's ablation table, made from row records: the numbers each column shows, rows that
measured less or failed, and --check telling a stale page from a current one."""
from pathlib import Path

import yaml

from deepfake_detector.experiments.grid import load_grid
from deepfake_detector.experiments.table import check_table, render_table, write_table
from deepfake_detector.utils.files import write_json_atomic
from tests.unit.test_ablation_grid import PARAMS, STAGES

AXES = {"dropout": {"low": {"model.dropout": 0.1}, "high": {"model.dropout": 0.5}}}
PAGE = "# Ablation\n\nProse.\n\n<!-- ablation:start -->\n\nold\n\n<!-- ablation:end -->\n\nMore prose.\n"
LATENCY = {"p50_ms": 12.345, "cpu_model": "Test CPU @ 2.0GHz", "cores": 2}


def grid(tmp_path: Path):
    path = tmp_path / "ablation.yaml"
    path.write_text(yaml.safe_dump({"axes": AXES}, sort_keys=False))
    return load_grid(path, PARAMS, STAGES)


def done(name: str, level: str, **values) -> dict:
    return {"row": name, "levels": {"dropout": level}, "status": "done", "error": None,
            "finished": "2026-12-04T10:00:00+00:00",
            "in_distribution": {"roc_auc": 0.99123, "ci_low": 0.98, "ci_high": 1.0, "n_test": 120},
            "unseen": None, "latency": None, **values}


def table_line(block: str, row: str) -> str:
    return next(line for line in block.splitlines() if line.startswith(f"| `{row}`"))


def test_a_row_shows_its_aucs_with_intervals_worst_family_and_latency_ratio(tmp_path):
    summary = {"n_sets": 2, "mean_roc_auc": 0.8, "mean_roc_auc_ci_low": 0.75, "mean_roc_auc_ci_high": 0.85,
               "min_roc_auc": 0.7, "min_roc_auc_set": "demo-nearest"}
    row = done("low", "low", unseen={"summary": summary, "sets": []},
               latency={**LATENCY, "ratio_to_baseline": 1.05})
    block = render_table(grid(tmp_path), [row], "config/ablation.yaml")
    assert table_line(block, "low") == ("| `low` | low | 0.9912 (0.9800 – 1.0000) | 0.8000 (0.7500 – 0.8500) | "
                                        "`demo-nearest` 0.7000 | 12.35 (1.05x) |")
    assert "measured on Test CPU @ 2.0GHz (2 cores), 2026-12-04." in block


def test_without_a_summary_the_worst_family_comes_from_the_sets_and_the_mean_is_not_given(tmp_path):
    sets = [{"name": "demo-style-b", "roc_auc": 0.65}, {"name": "demo-blend", "roc_auc": 0.6}]
    block = render_table(grid(tmp_path), [done("low", "low", unseen={"summary": None, "sets": sets})], "g.yaml")
    assert table_line(block, "low").endswith("| n/a | `demo-blend` 0.6000 | n/a |")
    assert "No row measured latency" in block


def test_a_failed_row_says_so_with_its_error(tmp_path):
    failed = {"row": "high", "levels": {"dropout": "high"}, "status": "failed",
              "error": "ExperimentError: `dvc exp run` exited with 255\nmore", "finished": "2026-12-05T01:00:00"}
    block = render_table(grid(tmp_path), [done("low", "low"), failed], "g.yaml")
    assert table_line(block, "high") == "| `high` | high | failed |  |  |  |"
    assert "- `high` failed: ExperimentError: `dvc exp run` exited with 255" in block
    assert "2026-12-04 to 2026-12-05" in block


def test_check_passes_on_the_written_page_and_fails_once_it_differs(tmp_path):
    page = tmp_path / "generalization.md"
    page.write_text(PAGE)
    block = render_table(grid(tmp_path), [done("low", "low")], "g.yaml")
    assert check_table(page, block) != []
    write_table(page, block)
    assert check_table(page, block) == []
    text = page.read_text()
    assert text.startswith("# Ablation\n\nProse.\n") and text.endswith("More prose.\n")
    page.write_text(text.replace("0.9912", "0.9000"))
    [problem] = check_table(page, block)
    assert "not what the row records give" in problem and "+| `low` | low | 0.9912" in problem


def test_records_are_read_in_grid_order(tmp_path):
    from deepfake_detector.experiments.table import recorded_rows

    write_json_atomic(tmp_path / "records" / "high.json", done("high", "high"))
    write_json_atomic(tmp_path / "records" / "low.json", done("low", "low"))
    assert [row["row"] for row in recorded_rows(grid(tmp_path), tmp_path / "records")] == ["low", "high"]
