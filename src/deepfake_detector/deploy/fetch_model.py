"""Fetch the model export of a registered MLflow model version, found by alias, into a folder, verified.

The CD workflow uses this when MODEL_SOURCE=mlflow: the export stage logs artifacts/export/ to the
training's MLflow run under the artifact path "export", and the evaluate stage registers that run's
model, so the alias (e.g. "production") names the run whose export the image should serve. The folder is
replaced only once every file listed in the model card is present with the card's SHA-256, so a failed
or tampered download never reaches an image. `--check DIR` runs the same verification on a folder that
arrived another way (`dvc pull export`).

    python -m deepfake_detector.deploy.fetch_model --name deepfake-detector --alias production --out artifacts/export
    deepfake-detector fetch-model --alias production     # the same, with the defaults from config/config.yaml

Credentials come from MLflow's usual variables: MLFLOW_TRACKING_URI, and for a server behind basic auth
(DagsHub included) MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deepfake_detector.contracts.errors import ConfigError, DeepfakeDetectorError, ModelError
from deepfake_detector.contracts.export_layout import MODEL_CARD_NAME
from deepfake_detector.contracts.model_card import read_model_card
from deepfake_detector.logging_config import configure_logging
from deepfake_detector.utils.commands import run_module_command
from deepfake_detector.utils.files import atomic_directory

logger = logging.getLogger(__name__)

EXPORT_ARTIFACT_PATH = "export"  # where pipeline/export.py logs the export folder in the training run
DEFAULT_ALIAS = "production"
DESCRIPTION = ("Fetch the export of the registered MLflow model version behind an alias into a folder, replacing "
               "the folder only when every file matches the model card's SHA-256; or, with --check, only verify a "
               "folder. The server comes from MLFLOW_TRACKING_URI (MLFLOW_TRACKING_USERNAME / "
               "MLFLOW_TRACKING_PASSWORD for basic auth). Exit 0: verified; 1: not found, unreachable or not "
               "matching its card; 2: usage.")


class ModelFetchError(DeepfakeDetectorError):
    """The registered model, its alias or its export cannot be found, reached or trusted."""


@dataclass(frozen=True)
class FetchedModel:
    name: str
    alias: str
    version: str
    run_id: str
    folder: Path
    files: tuple[str, ...]  # the export files checked against the model card


def verify_export(folder: str | Path) -> tuple[str, ...]:
    """The export files the model card lists, after checking each exists with the card's SHA-256.

    Raises ModelFetchError naming the first problem: no card, a malformed card, a card without exports,
    an entry pointing outside the folder, a missing file, or a file that differs from the card.
    """
    try:
        card = read_model_card(Path(folder))
        card.verify_all()
    except ModelError as error:
        raise ModelFetchError(str(error)) from error
    return tuple(entry.file for entry in card.exports.values())


def resolve_tracking_uri(tracking_uri: str | None, environ: Mapping[str, str]) -> str:
    """The tracking server to ask: the argument, else MLFLOW_TRACKING_URI; never MLflow's silent ./mlruns default,
    which in CI would be an empty store and a confusing "not found"."""
    uri = tracking_uri or environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        raise ModelFetchError("no MLflow tracking URI: set MLFLOW_TRACKING_URI (and MLFLOW_TRACKING_USERNAME / "
                              "MLFLOW_TRACKING_PASSWORD for a server with basic auth, e.g. DagsHub) or pass "
                              "--tracking-uri")
    return uri


def fetch_registered_export(name: str, alias: str, out: str | Path, tracking_uri: str | None = None,
                            environ: Mapping[str, str] | None = None) -> FetchedModel:
    """Download the export logged with the run behind `name@alias` into out, replacing out only when verified."""
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    uri = resolve_tracking_uri(tracking_uri, os.environ if environ is None else environ)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        raise ModelFetchError(_alias_problem(client, name, alias, uri, error)) from error
    if not version.run_id:
        raise ModelFetchError(f"{name} version {version.version} (alias {alias!r}) records no source run, so "
                              f"its export cannot be found")
    logger.info("%s@%s is version %s from run %s (%s)", name, alias, version.version, version.run_id, uri)

    out = Path(out)
    with atomic_directory(out) as staging:
        try:
            downloaded = Path(download_artifacts(run_id=version.run_id, artifact_path=EXPORT_ARTIFACT_PATH,
                                                 dst_path=str(staging), tracking_uri=uri))
        except MlflowException as error:
            raise ModelFetchError(f"run {version.run_id} of {name} version {version.version} has no readable "
                                  f"'{EXPORT_ARTIFACT_PATH}/' artifacts (did the export stage log to it?): "
                                  f"{error}") from error
        # download_artifacts recreates the artifact path inside dst_path: lift its content up one level.
        for item in list(downloaded.iterdir()):
            item.rename(staging / item.name)
        downloaded.rmdir()
        files = verify_export(staging)
    return FetchedModel(name=name, alias=alias, version=str(version.version), run_id=version.run_id, folder=out,
                        files=files)


def _alias_problem(client, name: str, alias: str, uri: str, error: Exception) -> str:
    """Say whether the model or only the alias is unknown, and which aliases exist; or that the server refused."""
    from mlflow.exceptions import MlflowException

    if getattr(error, "error_code", None) not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
        return (f"cannot read {name}@{alias} from {uri} (are MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD "
                f"set and allowed?): {error}")
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return f"no registered model named {name!r} at {uri} (or no access to it): {error}"
    known = ", ".join(sorted(model.aliases)) or "none"
    return f"registered model {name!r} has no alias {alias!r} at {uri} (aliases: {known})"


def _registry_defaults(root: Path) -> tuple[str | None, Path | None]:
    """The registered model name and the export folder from config/config.yaml, when root is a project checkout."""
    from deepfake_detector.config import ConfigurationManager

    if not (Path(root) / "config" / "config.yaml").is_file():
        return None, None  # not a project checkout: --name and --out must be given
    manager = ConfigurationManager(root=root)  # a ConfigError here is the user's to see, not "no defaults"
    return manager.get_tracking_config().registered_model_name, manager.get_export_config().root_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="registered model name (default: tracking.registered_model_name in "
                                       "config/config.yaml)")
    parser.add_argument("--alias", default=DEFAULT_ALIAS, help=f"model version alias (default: {DEFAULT_ALIAS})")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="folder to fill (default: export.root_dir in config/config.yaml)")
    parser.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking server (default: MLFLOW_TRACKING_URI)")
    parser.add_argument("--check", type=Path, metavar="DIR",
                        help="only verify DIR against its model card (e.g. after `dvc pull export`), fetch nothing")


def run(args: argparse.Namespace) -> int:
    """0: fetched (or checked) and verified; 1: not found, unreachable or not matching its card; 2: usage."""
    configure_logging(log_dir=None)
    try:
        if args.check is not None:
            files = verify_export(args.check)
            print(f"{args.check}: {len(files)} exports match {MODEL_CARD_NAME} ({', '.join(files)})")
            return 0
        name, out = args.name, args.out
        if name is None or out is None:
            default_name, default_out = _registry_defaults(args.root)
            name, out = name or default_name, out or default_out
        if name is None or out is None:
            print("error: --name and --out are needed outside the project checkout", file=sys.stderr)
            return 2
        fetched = fetch_registered_export(name, args.alias, out, tracking_uri=args.tracking_uri)
    except ConfigError as error:
        logger.error("invalid configuration (it gives --name and --out their defaults):\n%s", error)
        return 2
    except ModelFetchError as error:
        logger.error("%s", error)
        return 1
    print(f"{fetched.name}@{fetched.alias}: version {fetched.version}, run {fetched.run_id} -> {fetched.folder} "
          f"({len(fetched.files)} exports verified: {', '.join(fetched.files)})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_module_command("python -m deepfake_detector.deploy.fetch_model", DESCRIPTION, add_arguments, run, argv,
                              root_help="project checkout whose config/config.yaml gives the defaults (default: .)")


if __name__ == "__main__":
    sys.exit(main())
