"""MLflow (and DagsHub) set-up in one place, with tracking that can fail without failing the run.

Default: a local SQLite store (mlflow.db) and artifact folder (mlruns/) inside the repo, no
server. MLFLOW_TRACKING_URI switches to a remote; with DAGSHUB_USER_TOKEN, DAGSHUB_REPO_OWNER
and DAGSHUB_REPO_NAME set, `dagshub.init` points MLflow at that repository's server. If the
store fails mid-run, a warning says so once and the stage finishes with its files on disk.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from deepfake_detector.config.entities import TrackingConfig
from deepfake_detector.contracts.layers import OUTPUT_NAME
from deepfake_detector.inference.keras_model import load_keras_model

logger = logging.getLogger(__name__)

DAGSHUB_VARIABLES = ("DAGSHUB_USER_TOKEN", "DAGSHUB_REPO_OWNER", "DAGSHUB_REPO_NAME")


def resolve_tracking_uri(config: TrackingConfig, root: Path) -> str:
    """The URI to log to: MLFLOW_TRACKING_URI if set, else config's, with local paths made absolute."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or config.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{(root / uri.removeprefix('sqlite:///')).resolve()}"
    return uri


def is_local_uri(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"epochs": 3}} -> {"train.epochs": 3}: how params.yaml keys read in MLflow."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _tolerant(method: Callable) -> Callable:
    """Turn a tracking failure into one warning; later calls become no-ops."""

    @functools.wraps(method)
    def wrapper(self: ExperimentTracker, *args: Any, **kwargs: Any) -> Any:
        if not self.is_enabled:
            return None
        try:
            return method(self, *args, **kwargs)
        except Exception as error:  # noqa: BLE001 - any store failure must not fail the stage
            self._disable(error)
            return None

    return wrapper


class ExperimentTracker:
    """One stage's view of MLflow: start or resume a run, log to it, never crash the stage."""

    def __init__(self, config: TrackingConfig, root: Path, enabled: bool = True) -> None:
        self.config = config
        self.root = Path(root)
        self.is_enabled = enabled and os.environ.get("DEEPFAKE_DETECTOR_TRACKING", "1") != "0"
        self.uri = resolve_tracking_uri(config, self.root)
        self.run_id: str | None = None
        self._is_configured = False

    def _disable(self, error: BaseException) -> None:
        logger.warning("MLflow tracking at %s failed (%s: %s); the run continues and keeps its files "
                       "on disk, but nothing more is logged to MLflow.", self.uri,
                       type(error).__name__, error)
        self.is_enabled = False

    def _configure(self) -> None:
        if self._is_configured:
            return
        import mlflow

        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        if all(os.environ.get(name) for name in DAGSHUB_VARIABLES):
            # Only with a token: without one dagshub.init waits for an interactive login.
            import dagshub

            dagshub.init(repo_owner=os.environ["DAGSHUB_REPO_OWNER"],
                         repo_name=os.environ["DAGSHUB_REPO_NAME"], mlflow=True)
            self.uri = mlflow.get_tracking_uri()
        else:
            mlflow.set_tracking_uri(self.uri)
        experiment = mlflow.get_experiment_by_name(self.config.experiment_name)
        if experiment is None:
            location = (self.root / "mlruns").resolve().as_uri() if is_local_uri(self.uri) else None
            mlflow.create_experiment(self.config.experiment_name, artifact_location=location)
        mlflow.set_experiment(self.config.experiment_name)
        self._is_configured = True

    @contextlib.contextmanager
    def run(self, run_name: str, run_id: str | None = None,
            tags: Mapping[str, str] | None = None) -> Iterator[ExperimentTracker]:
        """Open a new run (or reopen run_id) for the block; it is ended as FAILED if the block raises."""
        active = self._start(run_name, run_id, tags)
        status = "FINISHED"
        try:
            yield self
        except BaseException:
            status = "FAILED"
            raise
        finally:
            if active:
                self._end(status)

    @_tolerant
    def _start(self, run_name: str, run_id: str | None, tags: Mapping[str, str] | None) -> bool:
        import mlflow

        self._configure()
        run = mlflow.start_run(run_id=run_id) if run_id else mlflow.start_run(run_name=run_name)
        self.run_id = run.info.run_id
        mlflow.set_tags({"project": "deepfake-detector", **(tags or {})})
        logger.info("MLflow run %s (%s) at %s", self.run_id, run_name, self.uri)
        return True

    @_tolerant
    def _end(self, status: str) -> None:
        import mlflow

        mlflow.end_run(status=status)

    @_tolerant
    def log_params(self, params: Mapping[str, Any]) -> None:
        import mlflow

        mlflow.log_params({key: str(value)[:6000] for key, value in flatten(params).items()})

    @_tolerant
    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Tags, unlike params, may change within a run: for settings that a rerun of a later
        stage (e.g. a new evaluation threshold) changes after the run was created."""
        import mlflow

        mlflow.set_tags({key: str(value) for key, value in flatten(tags).items()})

    @_tolerant
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        import mlflow

        numeric = {key: float(value) for key, value in flatten(metrics).items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool)}
        mlflow.log_metrics(numeric, step=step)

    @_tolerant
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        path = Path(path)
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=artifact_path)
        elif path.exists():
            mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_keras_model(self, model_file: Path, image_size: int) -> None:
        """Log the trained model with its flavor, pinned requirements and a signature (raw RGB in
        [0, 255] -> P(fake)), registered under tracking.registered_model_name.

        The model is loaded here, outside the tolerant part: a model that cannot be loaded is the
        stage's error, not a tracking failure.
        """
        if self.is_enabled:
            self._log_keras_model(load_keras_model(model_file, image_size), image_size)

    @_tolerant
    def _log_keras_model(self, model: Any, image_size: int) -> None:
        import keras
        import mlflow
        import numpy as np
        import tensorflow as tf
        from mlflow.models.signature import ModelSignature
        from mlflow.types.schema import Schema, TensorSpec

        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, image_size, image_size, 3), "image")]),
            outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 1), OUTPUT_NAME)]),
        )
        requirements = [f"tensorflow-cpu=={tf.__version__}", f"keras=={keras.__version__}"]
        mlflow.keras.log_model(model, name="model", signature=signature, pip_requirements=requirements,
                               registered_model_name=self.config.registered_model_name)

    def epoch_logger(self) -> Any:
        """A Keras callback that sends each epoch's logs to this run."""
        import keras

        tracker = self

        class EpochMetricsLogger(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
                # The trainer numbers epochs on across phases and restarts: one curve, no repeats.
                tracker.log_metrics(dict(logs or {}), step=epoch)

        return EpochMetricsLogger()
