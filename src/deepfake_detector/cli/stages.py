"""`deepfake-detector run`: pipeline stages in DAG order in this process, without DVC (as main.py does)."""
from __future__ import annotations

import argparse

from deepfake_detector.pipeline.stages import STAGES

DESCRIPTION = ("Run pipeline stages in DAG order in this process, without DVC: all of them by default, as "
               "`python main.py` does. `dvc repro` runs the same stages, skipping those whose inputs did not change.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stages", nargs="*", choices=list(STAGES), metavar="STAGE",
                        help=f"stages to run, in the order given (default: all): {', '.join(STAGES)}")


def run(args: argparse.Namespace) -> int:
    """0 when every stage succeeded; 1 when one failed; 2 for an invalid configuration."""
    from deepfake_detector.pipeline.runner import run_stages

    names = args.stages or list(STAGES)
    return run_stages([(name, STAGES[name]) for name in names], root=args.root)
