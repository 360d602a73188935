"""The `deepfake-detector` command: run pipeline stages, check the configuration, score images."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from deepfake_detector import __version__, predict_cli


def _run(args: argparse.Namespace) -> int:
    from deepfake_detector.pipeline.runner import run_stages
    from deepfake_detector.pipeline.stages import STAGES

    names = args.stages or list(STAGES)
    return run_stages([(name, STAGES[name]) for name in names], root=args.root)


def _check_config(args: argparse.Namespace) -> int:
    from deepfake_detector.config import ConfigurationManager
    from deepfake_detector.contracts.errors import ConfigError

    try:
        manager = ConfigurationManager(root=args.root)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    entities = {
        "data_ingestion": manager.get_data_ingestion_config(),
        "data_validation": manager.get_data_validation_config(),
        "model": manager.get_model_config(),
        "training": manager.get_training_config(),
        "evaluation": manager.get_evaluation_config(),
        "export": manager.get_export_config(),
        "serving": manager.get_serving_config(),
    }
    for name, entity in entities.items():
        print(f"{name}:")
        for key, value in asdict(entity).items():
            print(f"  {key}: {value}")
    print("configuration OK")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from deepfake_detector.pipeline.stages import STAGES

    parser = argparse.ArgumentParser(prog="deepfake-detector", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="repository root holding config/config.yaml and params.yaml (default: .)")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run pipeline stages in order, without DVC")
    run.add_argument("stages", nargs="*", choices=list(STAGES), metavar="STAGE",
                     help=f"stages to run (default: all): {', '.join(STAGES)}")
    run.set_defaults(handler=_run)

    check = commands.add_parser("check-config", help="validate config.yaml and params.yaml and show "
                                "what each component receives")
    check.set_defaults(handler=_check_config)

    predict = commands.add_parser("predict", help="score image files and folders with the served model "
                                  "(the numbers the web API gives), as a table, CSV or JSON")
    predict_cli.add_arguments(predict)
    predict.set_defaults(handler=predict_cli.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
