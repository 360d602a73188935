"""`deepfake-detector run`: pipeline stages in DAG order in this process, without DVC (as main.py does)."""
from __future__ import annotations

import argparse
import difflib

from deepfake_detector.pipeline.stages import STAGES

DESCRIPTION = ("Run pipeline stages in DAG order in this process, without DVC: all of them by default, as "
               "`python main.py` does. `dvc repro` runs the same stages, skipping those whose inputs did not change.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # A type check rather than `choices`: argparse checks an empty `nargs="*"` list against choices
    # and refuses it, which would make "no stage named" (= all stages) an error.
    parser.add_argument("stages", nargs="*", type=stage_name, metavar="STAGE",
                        help=f"stages to run, in DAG order whatever order they are named in (default: all): "
                             f"{', '.join(STAGES)}")


def stage_name(value: str) -> str:
    """value when it names a stage; otherwise an argparse error listing the stages and the closest one."""
    if value in STAGES:
        return value
    close = difflib.get_close_matches(value, list(STAGES), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise argparse.ArgumentTypeError(f"unknown stage {value!r}{hint}; stages: {', '.join(STAGES)}")


def run(args: argparse.Namespace) -> int:
    """0 when every stage succeeded; 1 when one failed; 2 for an invalid configuration."""
    from deepfake_detector.pipeline.runner import run_stages

    # DAG order whatever order they were named in, each once: `run evaluate train` must not score the old model.
    names = [name for name in STAGES if name in args.stages] if args.stages else list(STAGES)
    return run_stages([(name, STAGES[name]) for name in names], root=args.root)
