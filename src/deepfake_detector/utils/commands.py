"""The `python -m` entry point of a module whose command also lives in the `deepfake-detector` CLI: the same
`add_arguments(parser)` + `run(args) -> int` pair, so the two never drift."""
from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT_HELP = "repository root holding config/config.yaml and params.yaml (default: .)"


def run_module_command(prog: str, description: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                       run: Callable[[argparse.Namespace], int], argv: Sequence[str] | None = None, *,
                       root_help: str | None = ROOT_HELP) -> int:
    """Parse argv with the module's own options (plus --root unless root_help is None) and run it."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    if root_help is not None:
        parser.add_argument("--root", type=Path, default=Path("."), help=root_help)
    add_arguments(parser)
    return run(parser.parse_args(argv))
