"""`deepfake-detector results` and `python -m deepfake_detector.results`: write README's results tables from
the outputs dvc.lock records, or check that README still matches them."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepfake_detector.utils.commands import run_module_command

EXIT_DIFFERS = 1
EXIT_CANNOT_RUN = 2
README = Path("README.md")

DESCRIPTION = ("Write README's results tables (test metrics, training, robustness, cross-dataset, shortcut audit, "
               "exports) between their results markers, from the pipeline outputs dvc.lock records; each block "
               "names those outputs and their md5. Run it after `dvc repro`. With --check nothing is written: exit 1 "
               "when a block disagrees with dvc.lock, or with the locked outputs where they are on disk.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--readme", type=Path, default=README, metavar="FILE",
                        help=f"the Markdown file holding the results markers (default: {README})")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when the blocks disagree with dvc.lock or the locked outputs")


def run(args: argparse.Namespace) -> int:
    """0 when README was written (or, with --check, is current); 1 when --check finds it stale; 2 when an
    output, dvc.lock, the configuration or a marker is missing or unusable."""
    from deepfake_detector.contracts.errors import DeepfakeDetectorError
    from deepfake_detector.results.outputs import PipelineOutputs
    from deepfake_detector.results.readme import check_readme, write_readme
    from deepfake_detector.utils.markdown_markers import MarkerError

    root = Path(args.root).resolve()
    readme = args.readme if args.readme.is_absolute() else root / args.readme
    try:
        outputs = PipelineOutputs.of_repository(root)
        if not args.check:
            write_readme(readme, outputs)
            print(f"Updated the results tables of {readme} from the outputs {outputs.lock_file.name} records")
            return 0
        result = check_readme(readme, outputs)
    except (DeepfakeDetectorError, MarkerError) as error:
        print(f"deepfake-detector results: error: {error}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    for problem in result.problems:
        print(problem, file=sys.stderr)
    if result.unchecked:
        print(f"Not on disk as locked, so checked against {outputs.lock_file.name} only: "
              f"{', '.join(result.unchecked)}")
    if not result.is_current:
        return EXIT_DIFFERS
    print(f"{readme.name}: the results tables match {outputs.lock_file.name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_module_command("python -m deepfake_detector.results", DESCRIPTION, add_arguments, run, argv,
                              root_help="repository root holding config/config.yaml, params.yaml and dvc.lock "
                              "(default: .)")


if __name__ == "__main__":
    sys.exit(main())
