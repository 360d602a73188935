"""ConfigurationManager: the only reader of config.yaml and params.yaml.

Both files are checked in full against their models (paths.py, params.py) when the manager is
built, so a typo fails before any stage does work, with every problem in one error. Reading has no
side effects: no directory is created here.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from deepfake_detector.config.checker import validated
from deepfake_detector.config.entities import (
    NESTED_ENTITIES,
    CrossDatasetConfig,
    DataIngestionConfig,
    DataValidationConfig,
    EvaluationConfig,
    ExportConfig,
    ExtraSetConfig,
    FacesConfig,
    FramesConfig,
    ModelConfig,
    ReportConfig,
    RobustnessConfig,
    ServingConfig,
    ShortcutAuditConfig,
    TrackingConfig,
    TrainingConfig,
)
from deepfake_detector.config.params import Params
from deepfake_detector.config.paths import ConfigFile
from deepfake_detector.contracts.demo_sources import demo_family
from deepfake_detector.contracts.errors import ConfigError
from deepfake_detector.utils.redaction import displayable_source

CONFIG_FILE = Path("config/config.yaml")
PARAMS_FILE = Path("params.yaml")
BUILT_IN_WEIGHTS = ("imagenet", "none")

Entity = TypeVar("Entity")


def read_yaml(path: Path) -> dict[str, Any]:
    """Load a YAML mapping, naming the file in every failure."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:  # a folder, no permission, not UTF-8 text
        raise ConfigError(f"{path}: cannot read: {error}") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(content).__name__}")
    return content


class ConfigurationManager:
    """Builds one frozen entity per component from the two YAML files.

    root is the folder that relative paths in config.yaml are resolved against (the repo root).
    """

    def __init__(self, config_path: str | Path | None = None, params_path: str | Path | None = None,
                 root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else Path.cwd()
        self.config_path = Path(config_path) if config_path else self.root / CONFIG_FILE
        self.params_path = Path(params_path) if params_path else self.root / PARAMS_FILE
        raw_params = read_yaml(self.params_path)
        paths, config_problems = validated(read_yaml(self.config_path), ConfigFile, self.config_path.name)
        params, params_problems = validated(raw_params, Params, self.params_path.name)
        if paths is None or params is None:
            raise ConfigError("\n".join(config_problems + params_problems))
        self.paths: ConfigFile = paths
        self.params: Params = params
        self._raw_params = raw_params

    def params_as_written(self) -> dict[str, Any]:
        """params.yaml as read (its keys, its values; checked), for records: MLflow params, model card, report.

        The typed `params` hold what stages use (sizes in bytes, class names lower-cased); a record
        shows what the user wrote, except credentials: a URL in data.source or an extra set's source
        (or a list entry) is redacted, since records are shared and may outlive a token.
        """
        params = copy.deepcopy(self._raw_params)
        data = params.get("data")
        if isinstance(data, dict) and isinstance(data.get("source"), str):
            data["source"] = displayable_source(data["source"])
        elif isinstance(data, dict) and isinstance(data.get("source"), list):
            data["source"] = [displayable_source(entry) for entry in data["source"]]
        for entry in (params.get("evaluate") or {}).get("extra_sets") or []:
            if isinstance(entry, dict) and isinstance(entry.get("source"), str):
                entry["source"] = displayable_source(entry["source"])
        return params

    def _recorded_params(self) -> dict[str, Any]:
        # Serving settings change without retraining; the model card and the report record what made the model.
        return {section: values for section, values in self.params_as_written().items() if section != "serve"}

    # ---- building entities ----------------------------------------------------------------------------

    def _entity(self, entity: type[Entity], *sections: Any, **values: Any) -> Entity:
        """entity from every field of sections (the models it subclasses), then values on top."""
        fields = {f.name: getattr(section, f.name) for section in sections for f in dataclasses.fields(section)}
        return entity(**{name: self._resolved(value) for name, value in {**fields, **values}.items()})

    def _resolved(self, value: Any) -> Any:
        """Paths against the repository root; nested params models as their entity classes."""
        if isinstance(value, Path):
            return value if value.is_absolute() else self.root / value
        nested = NESTED_ENTITIES.get(type(value))
        if nested is not None:
            return nested(**{f.name: self._resolved(getattr(value, f.name)) for f in dataclasses.fields(value)})
        if isinstance(value, tuple):
            return tuple(self._resolved(item) for item in value)
        return value

    def _data_source(self, source: str) -> str:
        """A local path in data.source is relative to the repo root, like every other path."""
        if demo_family(source) is not None or source.lower().startswith("kaggle:") or "://" in source:
            return source
        return str(self._resolved(Path(source).expanduser()))

    def _data_values(self) -> dict[str, Any]:
        data = self.params.data
        sources = tuple(self._data_source(entry) for entry in data.training_sources)
        return {"source": sources if data.is_multi_source else sources[0]}

    def _evaluate_values(self) -> dict[str, Any]:
        return {"extra_sets": tuple(ExtraSetConfig(extra.name, self._data_source(extra.source))
                                    for extra in self.params.evaluate.extra_sets)}

    def _weights(self) -> str:
        weights = self.params.model.weights
        return weights.lower() if weights.lower() in BUILT_IN_WEIGHTS else str(self._resolved(Path(weights)))

    def _freeze_batch_norm(self) -> bool:
        setting = self.params.model.freeze_batch_norm
        if setting == "auto":
            # Pretrained statistics are worth keeping; from scratch they must be learned.
            return self._weights() != "none"
        return setting

    def _model_inputs(self) -> dict[str, Path]:
        """The manifest the model trains and is scored on, and the folder its paths are in: the faces stage's
        crops with data.faces.enabled, else the validated whole images (stills and video frames)."""
        paths = self.paths
        if self.params.data.faces.enabled:
            return {"manifest_file": paths.faces.manifest_file, "dataset_dir": paths.faces.crops_dir}
        return {"manifest_file": paths.data_validation.manifest_file, "dataset_dir": paths.frames.dataset_dir}

    def _scoring_inputs(self) -> dict[str, Any]:
        """What every stage that scores the data set with the trained model reads."""
        paths = self.paths
        return {"model_file": paths.training.model_file, **self._model_inputs(),
                "training_run_file": paths.training.run_file,
                "image_size": self.params.model.image_size, "input_fit": self.params.model.input_fit}

    # ---- one entity per stage --------------------------------------------------------------------------

    def get_data_ingestion_config(self) -> DataIngestionConfig:
        names = tuple(displayable_source(entry) for entry in self.params.data.training_sources)
        return self._entity(DataIngestionConfig, self.paths.data_ingestion, self.params.data, **self._data_values(),
                            source_names=names)

    def get_frames_config(self) -> FramesConfig:
        ingestion = self.paths.data_ingestion
        return self._entity(FramesConfig, self.paths.frames, video=self.params.data.video,
                            ingest_index_file=ingestion.index_file, ingest_dataset_dir=ingestion.dataset_dir)

    def get_data_validation_config(self) -> DataValidationConfig:
        frames = self.paths.frames
        return self._entity(DataValidationConfig, self.paths.data_validation, self.params.data,
                            **self._data_values(), dataset_dir=frames.dataset_dir, index_file=frames.index_file)

    def get_faces_config(self) -> FacesConfig:
        paths = self.paths
        return self._entity(FacesConfig, paths.faces, faces=self.params.data.faces,
                            manifest_in=paths.data_validation.manifest_file,
                            dataset_dir=paths.frames.dataset_dir,
                            quarantine_file=paths.data_validation.quarantine_file,
                            image_size=self.params.model.image_size, input_fit=self.params.model.input_fit)

    def get_model_config(self) -> ModelConfig:
        return self._entity(ModelConfig, self.paths.prepare_model, self.params.model, weights=self._weights(),
                            freeze_batch_norm=self._freeze_batch_norm())

    def get_training_config(self) -> TrainingConfig:
        paths = self.paths
        return self._entity(TrainingConfig, paths.training, self.params.train,
                            base_model_file=paths.prepare_model.model_file, **self._model_inputs(),
                            image_size=self.params.model.image_size,
                            input_fit=self.params.model.input_fit, freeze_batch_norm=self._freeze_batch_norm())

    def get_evaluation_config(self) -> EvaluationConfig:
        return self._entity(EvaluationConfig, self.paths.evaluation, self.params.evaluate, **self._evaluate_values(),
                            **self._scoring_inputs(), split_summary_file=self.paths.data_validation.split_summary_file)

    def get_robustness_config(self) -> RobustnessConfig:
        return self._entity(RobustnessConfig, self.paths.robustness, self.params.evaluate, **self._evaluate_values(),
                            **self._scoring_inputs(), scores_file=self.paths.evaluation.scores_file)

    def get_cross_dataset_config(self) -> CrossDatasetConfig:
        paths = self.paths
        return self._entity(CrossDatasetConfig, paths.cross_dataset, self.params.evaluate, **self._evaluate_values(),
                            model_file=paths.training.model_file, scores_file=paths.evaluation.scores_file,
                            training_run_file=paths.training.run_file, ingestion=self.get_data_ingestion_config(),
                            min_image_size=self.params.data.min_image_size, image_size=self.params.model.image_size,
                            input_fit=self.params.model.input_fit, faces=self.params.data.faces)

    def get_shortcut_audit_config(self) -> ShortcutAuditConfig:
        return self._entity(ShortcutAuditConfig, self.paths.shortcut_audit, self.params.evaluate,
                            **self._evaluate_values(), **self._scoring_inputs())

    def get_report_config(self) -> ReportConfig:
        paths = self.paths
        return self._entity(ReportConfig, paths.report, scores_file=paths.evaluation.scores_file,
                            predictions_file=paths.evaluation.predictions_file, plots_dir=paths.evaluation.plots_dir,
                            dataset_dir=self._model_inputs()["dataset_dir"],
                            robustness_metrics_file=paths.robustness.metrics_file,
                            robustness_png_file=paths.robustness.png_file,
                            cross_dataset_file=paths.cross_dataset.results_file,
                            shortcut_audit_file=paths.shortcut_audit.results_file,
                            training_run_file=paths.training.run_file,
                            params=self._recorded_params())

    def get_export_config(self) -> ExportConfig:
        return self._entity(ExportConfig, self.paths.export, self.params.export, **self._scoring_inputs(),
                            scores_file=self.paths.evaluation.scores_file, project_root=self.root,
                            batch_size=self.params.evaluate.batch_size, seed=self.params.train.seed,
                            params=self._recorded_params())

    def get_serving_config(self) -> ServingConfig:
        faces = self.params.data.faces
        return self._entity(ServingConfig, self.paths.serving, self.params.serve, input_fit=self.params.model.input_fit,
                            training_faces=faces if faces.enabled else None)

    def get_tracking_config(self) -> TrackingConfig:
        return self._entity(TrackingConfig, self.paths.tracking)

    def all_entities(self) -> dict[str, Any]:
        """Every stage's entity by name, in pipeline order (what `check-config` shows)."""
        return {
            "data_ingestion": self.get_data_ingestion_config(),
            "frames": self.get_frames_config(),
            "data_validation": self.get_data_validation_config(),
            "faces": self.get_faces_config(),
            "model": self.get_model_config(),
            "training": self.get_training_config(),
            "evaluation": self.get_evaluation_config(),
            "robustness": self.get_robustness_config(),
            "cross_dataset": self.get_cross_dataset_config(),
            "shortcut_audit": self.get_shortcut_audit_config(),
            "report": self.get_report_config(),
            "export": self.get_export_config(),
            "serving": self.get_serving_config(),
            "tracking": self.get_tracking_config(),
        }

    @property
    def logs_dir(self) -> Path:
        return self._resolved(self.paths.logs_dir)
