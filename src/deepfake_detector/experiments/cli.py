"""`deepfake-detector ablation run|table` and `python -m deepfake_detector.experiments`: run the rows of
config/ablation.yaml as DVC experiments, and write (or check) their table in docs/generalization.md."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from deepfake_detector.experiments.locations import DOC_FILE, GRID_FILE, RECORDS_DIR
from deepfake_detector.utils.commands import ROOT_HELP, run_module_command

logger = logging.getLogger(__name__)

EXIT_FAILED = 1        # run: a row failed; table --check: the table is stale
EXIT_CANNOT_RUN = 2

DESCRIPTION = ("The ablation of config/ablation.yaml (representation x augmentation x sources, or whatever axes it "
               "names). `run`: each row a DVC experiment (`dvc exp run --temp`: params.yaml and the workspace stay as "
               "they are; commit first, as untracked files do not reach the experiment), its in-distribution AUC, "
               "unseen-family AUCs and float32 TFLite latency recorded in artifacts/ablation/<row>.json. `table`: "
               "the rows' table in docs/generalization.md; with --check, exit 1 when the page is stale.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run_parser = actions.add_parser("run", help="run the grid's rows as DVC experiments and record each",
                                    description="Run the grid's rows as DVC experiments, in grid order, recording each "
                                                "row in artifacts/ablation/<row>.json as it ends; exit 1 when a row "
                                                "failed (the others still run).")
    run_parser.add_argument("--rows", type=_row_names, metavar="ROW,ROW",
                            help="comma-separated row names (default: every row of the grid)")
    run_parser.add_argument("--resume", action="store_true",
                            help="skip rows recorded as done with the same params and stages")
    table_parser = actions.add_parser("table", help="write the rows' table into docs/generalization.md",
                                      description="Write the table of the recorded rows between the ablation "
                                                  "markers of the page; with --check, change nothing and exit 1 "
                                                  "when the page differs.")
    table_parser.add_argument("--doc", type=Path, default=DOC_FILE, metavar="FILE",
                              help=f"the Markdown page holding the ablation markers (default: {DOC_FILE})")
    table_parser.add_argument("--check", action="store_true",
                              help="change nothing; exit 1 when the table differs from the row records")
    for sub in (run_parser, table_parser):
        sub.add_argument("--grid", type=Path, default=GRID_FILE, metavar="FILE",
                         help=f"the ablation grid (default: {GRID_FILE})")
        sub.add_argument("--out", type=Path, default=RECORDS_DIR, metavar="DIR",
                         help=f"folder of the row records (default: {RECORDS_DIR})")
        # Also accepted after the action; the command's own --root is the default.
        sub.add_argument("--root", type=Path, default=argparse.SUPPRESS, help=ROOT_HELP)


def _row_names(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected one or more row names separated by commas")
    return names


def run(args: argparse.Namespace) -> int:
    """0 on success; 1 when a row failed or, with --check, the table is stale; 2 when the grid, the
    configuration, the records or the page's markers are unusable."""
    from deepfake_detector.config.configuration import read_yaml
    from deepfake_detector.contracts.errors import DeepfakeDetectorError
    from deepfake_detector.experiments.grid import load_grid
    from deepfake_detector.logging_config import configure_logging
    from deepfake_detector.utils.markdown_markers import MarkerError

    configure_logging(log_dir=None)
    root = Path(args.root).resolve()
    try:
        stage_names = list(read_yaml(root / "dvc.yaml").get("stages") or {})
        grid = load_grid(_resolve(root, args.grid), read_yaml(root / "params.yaml"), stage_names)
        if args.action == "run":
            return _run_rows(args, root, grid)
        return _table(args, root, grid)
    except (DeepfakeDetectorError, MarkerError) as error:
        print(f"deepfake-detector ablation {args.action}: error: {error}", file=sys.stderr)
        return EXIT_CANNOT_RUN


def _resolve(root: Path, path: Path) -> Path:
    return path if path.is_absolute() else root / path


def _run_rows(args: argparse.Namespace, root: Path, grid) -> int:
    from deepfake_detector.experiments.records import DONE
    from deepfake_detector.experiments.runner import run_ablation

    results = run_ablation(root, grid, grid.select(args.rows), is_resume=args.resume, out_dir=_resolve(root, args.out))
    failed = [record["row"] for record in results if record.get("status") != DONE]
    print(f"{len(results) - len(failed)} of {len(results)} rows done; records in {_resolve(root, args.out)}"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return EXIT_FAILED if failed else 0


def _table(args: argparse.Namespace, root: Path, grid) -> int:
    from deepfake_detector.experiments.table import check_table, recorded_rows, render_table, write_table

    doc = _resolve(root, args.doc)
    grid_file = _resolve(root, args.grid)
    label = grid_file.relative_to(root).as_posix() if grid_file.is_relative_to(root) else str(grid_file)
    block = render_table(grid, recorded_rows(grid, _resolve(root, args.out)), label)
    if not args.check:
        write_table(doc, block)
        print(f"Updated the ablation table of {doc}")
        return 0
    problems = check_table(doc, block)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return EXIT_FAILED
    print(f"{doc.name}: the ablation table matches the row records")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_module_command("python -m deepfake_detector.experiments", DESCRIPTION, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
