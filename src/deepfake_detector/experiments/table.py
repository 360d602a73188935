"""The ablation table of docs/generalization.md, made from the row records, between the lines
`<!-- ablation:start -->` and `<!-- ablation:end -->`; the prose around it stays the author's.

Numbers follow README's results tables (results/tables.py): ROC AUC with four decimals, "n/a" where
a row did not measure something (a stage it did not run, a cross_dataset.json without a summary).
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepfake_detector.contracts.errors import DeepfakeDetectorError
from deepfake_detector.experiments import records
from deepfake_detector.experiments.grid import Grid
from deepfake_detector.experiments.latency import REPS_PER_ROUND, ROUNDS
from deepfake_detector.results.tables import NOT_AVAILABLE, RANKING_DIGITS, interval, markdown_table, number
from deepfake_detector.utils.markdown_markers import Markers, read_block, replace_block, write_blocks

MARKERS = Markers.named("ablation")
REGENERATE = "regenerate it with `deepfake-detector ablation table` (make ablation)"
DIFF_LINES = 12
ERROR_CHARS = 200


class TableError(DeepfakeDetectorError):
    """No row has a record to make the table from."""


def recorded_rows(grid: Grid, out_dir: Path) -> list[dict[str, Any]]:
    """The records of the grid's rows that have one, in grid order."""
    found = [records.read_record(records.record_file(out_dir, row.name)) for row in grid.rows]
    rows = [record for record in found if record is not None]
    if not rows:
        raise TableError(f"{out_dir}: no record of any row of {grid.source}; run `deepfake-detector ablation run` "
                         "(make ablation) first")
    return rows


def render_table(grid: Grid, rows: Sequence[Mapping[str, Any]], grid_label: str) -> str:
    """The block: a sentence on what was run, the table, failures, and where and when latency was measured.
    grid_label names the grid file as readers should see it (relative to the repository root)."""
    header = ["row", *grid.axes, "in-distribution AUC (95 % CI)", "mean unseen AUC (95 % CI)", "worst family (AUC)",
              "p50 latency ms (x baseline)"]
    lines = [f"Each row is a DVC experiment (`dvc exp show`) with the params of its levels in `{grid_label}`, "
             f"reproducing {', '.join(f'`{stage}`' for stage in grid.stages)}. In-distribution: test ROC AUC on "
             "the data trained on; unseen: the sets of `evaluate.extra_sets`, their mean and the worst one.", "",
             *markdown_table(header, [_cells(grid, row) for row in rows], "l" * (1 + len(grid.axes)) + "rrlr")]
    failures = [f"- `{row['row']}` failed: {_first_line(row.get('error'))}" for row in rows
                if row.get("status") != records.DONE]
    if failures:
        lines += ["", *failures]
    return "\n".join([*lines, "", _measured_on(grid, rows)])


def _cells(grid: Grid, row: Mapping[str, Any]) -> list[str]:
    levels = row.get("levels") or {}
    named = [f"`{row['row']}`", *(str(levels.get(axis, "")) for axis in grid.axes)]
    if row.get("status") != records.DONE:
        return [*named, "failed", "", "", ""]
    seen, unseen, latency = row.get("in_distribution") or {}, row.get("unseen") or {}, row.get("latency") or {}
    summary = unseen.get("summary") or {}
    return [*named, _auc(seen.get("roc_auc"), seen.get("ci_low"), seen.get("ci_high")),
            _auc(summary.get("mean_roc_auc"), summary.get("mean_roc_auc_ci_low"), summary.get("mean_roc_auc_ci_high")),
            _worst(unseen), _latency(latency)]


def _auc(value: Any, low: Any, high: Any) -> str:
    shown = number(value, RANKING_DIGITS)
    bounds = interval(low, high, RANKING_DIGITS)
    return f"{shown} ({bounds})" if bounds and shown != NOT_AVAILABLE else shown


def _worst(unseen: Mapping[str, Any]) -> str:
    """The summary's worst set; without a summary, the lowest ROC AUC of the sets listed."""
    summary = unseen.get("summary") or {}
    if summary.get("min_roc_auc_set") is not None:
        return f"`{summary['min_roc_auc_set']}` {number(summary.get('min_roc_auc'), RANKING_DIGITS)}"
    scored = [entry for entry in unseen.get("sets") or [] if isinstance(entry.get("roc_auc"), int | float)]
    if not scored:
        return NOT_AVAILABLE
    worst = min(scored, key=lambda entry: entry["roc_auc"])
    return f"`{worst['name']}` {number(worst['roc_auc'], RANKING_DIGITS)}"


def _latency(latency: Mapping[str, Any]) -> str:
    p50, ratio = latency.get("p50_ms"), latency.get("ratio_to_baseline")
    if p50 is None:
        return NOT_AVAILABLE
    return f"{p50:.2f} ({ratio:.2f}x)" if ratio is not None else f"{p50:.2f}"


def _first_line(text: Any) -> str:
    line = str(text or "no error recorded").strip().splitlines()[0]
    return line if len(line) <= ERROR_CHARS else line[:ERROR_CHARS] + "..."


def _measured_on(grid: Grid, rows: Sequence[Mapping[str, Any]]) -> str:
    machines = sorted({f"{row['latency']['cpu_model']} ({row['latency']['cores']} cores)" for row in rows
                       if row.get("latency")})
    days = sorted({str(row.get("finished", ""))[:10] for row in rows if row.get("finished")})
    when = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}" if days else "an unrecorded date"
    if not machines:
        return f"No row measured latency (none ran `export`). Run on {when}."
    return (f"Latency: the float32 TFLite export, one image at a time, p50 of {ROUNDS * REPS_PER_ROUND} calls in one "
            f"process, interleaved with the baseline row `{grid.baseline.name}`'s export; measured on "
            f"{' and '.join(machines)}, {when}.")


def write_table(doc: Path, block: str) -> Path:
    return write_blocks(Path(doc), {MARKERS: block})


def check_table(doc: Path, block: str) -> list[str]:
    """Problems (none when doc's block is exactly block), each naming the file and what to do."""
    doc = Path(doc)
    if not doc.is_file():
        return [f"{doc}: file not found"]
    text = doc.read_text(encoding="utf-8")
    regenerated = replace_block(text, MARKERS, block, doc)
    if regenerated == text:
        return []
    diff = list(difflib.unified_diff(read_block(text, MARKERS, doc).splitlines(),
                                     read_block(regenerated, MARKERS, doc).splitlines(),
                                     doc.name, "regenerated", n=0, lineterm=""))
    return [f"{doc}: the ablation table is not what the row records give; {REGENERATE}:\n"
            + "\n".join(diff[:DIFF_LINES] + (["..."] if len(diff) > DIFF_LINES else []))]
