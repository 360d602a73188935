"""The `deepfake-detector` command: one entry point for the pipeline, its configuration, scoring, serving,
benchmarks, model delivery, README results, the ablation and report screenshots.

Each subcommand's options and work live in one module as an `add_arguments(parser)` + `run(args) -> int` pair,
shared with that module's own `python -m` entry point, so the two never drift. Building the parser imports no
TensorFlow; a subcommand imports what it needs when it runs.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from deepfake_detector import __version__, predict_cli, report_screenshot
from deepfake_detector.benchmarks import cli as benchmarks_cli
from deepfake_detector.cli import check_config, serve, stages
from deepfake_detector.deploy import fetch_model
from deepfake_detector.experiments import cli as ablation_cli
from deepfake_detector.results import cli as results_cli

EXIT_USAGE = 2
DESCRIPTION = """\
Train, evaluate, serve and benchmark a lightweight deepfake-face detector:
a reproducible pipeline and its TensorFlow-free serving runtime."""

EXAMPLES = """\
examples:
  deepfake-detector run                      every stage, in order (dvc repro does the same, skipping fresh ones)
  deepfake-detector run train evaluate       two stages
  deepfake-detector check-config training    what the train stage receives
  deepfake-detector predict photos/ -o results.csv
  deepfake-detector serve --port 8000        http://localhost:8000
  deepfake-detector bench --quick --skip-training
  deepfake-detector fetch-model --check artifacts/export
  deepfake-detector results --check           README's results tables against dvc.lock
  deepfake-detector ablation run --resume     the ablation's rows as DVC experiments, skipping finished ones
  deepfake-detector screenshot artifacts/report/index.html report.png

`deepfake-detector COMMAND --help` lists a command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepfake-detector", description=DESCRIPTION,
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="repository root holding config/config.yaml and params.yaml (default: .)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    def add(name: str, summary: str, description: str, add_arguments: Callable[[argparse.ArgumentParser], None],
            run: Callable[[argparse.Namespace], int], reads_root: bool = True) -> None:
        command = commands.add_parser(name, help=summary, description=description)
        add_arguments(command)
        if reads_root:
            # Also accepted after the command; the top-level --root is the default.
            command.add_argument("--root", type=Path, default=argparse.SUPPRESS,
                                 help="repository root holding config/config.yaml and params.yaml (default: .)")
        command.set_defaults(handler=run)

    add("run", "run pipeline stages in order, without DVC", stages.DESCRIPTION, stages.add_arguments, stages.run)
    add("check-config", "validate config.yaml and params.yaml and show what every component receives",
        check_config.DESCRIPTION, check_config.add_arguments, check_config.run)
    add("predict", "score image files and folders with the served model, as a table, CSV or JSON",
        "Score image files and folders with the served model: the numbers the web API gives for the same files.",
        predict_cli.add_arguments, predict_cli.run, reads_root=False)  # predict_cli adds its own --root
    add("serve", "serve the web page and JSON API with gunicorn (http://localhost:8080)",
        serve.DESCRIPTION, serve.add_arguments, serve.run)
    add("bench", "measure speed and memory of every runtime; write the benchmark tables",
        benchmarks_cli.DESCRIPTION, benchmarks_cli.add_arguments, benchmarks_cli.run)
    add("fetch-model", "fetch a registered model's export from MLflow, verified against its model card",
        fetch_model.DESCRIPTION, fetch_model.add_arguments, fetch_model.run)
    add("results", "write README's results tables from the outputs dvc.lock records (--check: compare only)",
        results_cli.DESCRIPTION, results_cli.add_arguments, results_cli.run)
    add("ablation", "run the ablation grid as DVC experiments (run), or write its table in docs (table)",
        ablation_cli.DESCRIPTION, ablation_cli.add_arguments, ablation_cli.run)
    add("screenshot", "save a full-page PNG of the HTML evaluation report (headless Chromium)",
        report_screenshot.DESCRIPTION, report_screenshot.add_arguments, report_screenshot.run, reads_root=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return args.handler(args)
