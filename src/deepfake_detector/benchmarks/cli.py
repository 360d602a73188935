"""`deepfake-detector bench` and `python -m deepfake_detector.benchmarks`: measure, write bench/results.{json,md},
and optionally the tables of a Markdown page."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from deepfake_detector.utils.commands import run_module_command

logger = logging.getLogger(__name__)

EXIT_CANNOT_RUN = 2
BENCH_PAGE = Path("docs/benchmarks.md")  # the page whose bench markers hold the tables

DESCRIPTION = ("Benchmark inference runtimes, preprocessing, per-process memory, thread safety and the training input "
               "pipeline on this machine, on the exported model. Relative paths are resolved against --root. "
               "`make bench` re-exports the model first (dvc repro export).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("bench"), metavar="DIR",
                        help="folder for results.json and results.md (default: bench)")
    parser.add_argument("--model-file", type=Path, metavar="FILE",
                        help="Keras .h5 model (default: the training stage's model)")
    parser.add_argument("--export-dir", type=Path, metavar="DIR",
                        help="export folder with model_card.json (default: the export stage's folder)")
    parser.add_argument("--quick", action="store_true", help="tiny repetition counts: checks, not measurements")
    parser.add_argument("--skip-training", action="store_true", help="leave out the training input benchmark")
    parser.add_argument("--update-readme", nargs="?", const=BENCH_PAGE, type=Path, metavar="FILE",
                        help=f"write the tables between the bench markers of FILE (default: {BENCH_PAGE})")


def _resolve(root: Path, path: Path | None) -> Path | None:
    return None if path is None else (path if path.is_absolute() else root / path)


def _configuration(args: argparse.Namespace, root: Path):
    """Model file, export folder and training config; params.yaml is read only if something needs it."""
    model_file, export_dir = _resolve(root, args.model_file), _resolve(root, args.export_dir)
    training_config = None
    if model_file is None or export_dir is None or not args.skip_training:
        from deepfake_detector.config import ConfigurationManager

        manager = ConfigurationManager(root=root)
        export_config = manager.get_export_config()
        model_file = model_file or export_config.model_file
        export_dir = export_dir or export_config.root_dir
        if not args.skip_training:
            training_config = manager.get_training_config()
    return model_file, export_dir, training_config


def run(args: argparse.Namespace) -> int:
    """0 when the results are written; 2 when the inputs are missing or unusable (nothing measured)."""
    from deepfake_detector.benchmarks.harness import check_inputs, run_benchmarks
    from deepfake_detector.benchmarks.report import find_markers, render_tables, update_readme, write_results
    from deepfake_detector.benchmarks.settings import BenchSettings
    from deepfake_detector.benchmarks.training import check_training_inputs
    from deepfake_detector.contracts.errors import DeepfakeDetectorError
    from deepfake_detector.logging_config import configure_logging

    configure_logging(log_dir=None)
    root = args.root.resolve()
    settings = BenchSettings.quick() if args.quick else BenchSettings()
    try:
        model_file, export_dir, training_config = _configuration(args, root)
        check_inputs(model_file, export_dir)
        if training_config is not None:
            check_training_inputs(training_config)
        readme = _resolve(root, args.update_readme)
        if readme is not None:
            find_markers(readme)
        results = run_benchmarks(model_file, export_dir, root, settings, training_config)
        json_file, markdown_file = write_results(results, _resolve(root, args.out))
        if readme is not None:
            update_readme(readme, render_tables(results))
    except DeepfakeDetectorError as error:
        logger.error("%s", error)
        return EXIT_CANNOT_RUN
    print(f"Wrote {json_file}")
    print(f"Wrote {markdown_file}")
    if readme is not None:
        print(f"Updated {readme}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_module_command("python -m deepfake_detector.benchmarks", DESCRIPTION, add_arguments, run, argv,
                              root_help="repository root (default: .)")


if __name__ == "__main__":
    sys.exit(main())
