"""ConfigurationManager: the only reader of config.yaml and params.yaml.

Both files are checked in full against the schema when the manager is built, so a typo fails
before any stage does work. Reading has no side effects: no directory is created here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from box import ConfigBox

from deepfake_detector.config.entities import (
    AugmentationConfig,
    CrossDatasetConfig,
    DataIngestionConfig,
    DataValidationConfig,
    DemoDataConfig,
    EvaluationConfig,
    ExportConfig,
    ExtraSetConfig,
    ModelConfig,
    ReportConfig,
    RobustnessConfig,
    ServingConfig,
    ShortcutAuditConfig,
    SplitFractions,
    TrackingConfig,
    TrainingConfig,
)
from deepfake_detector.config.schema import CONFIG_SCHEMA, PARAMS_SCHEMA, check_against_schema
from deepfake_detector.contracts.errors import ConfigError

CONFIG_FILE = Path("config/config.yaml")
PARAMS_FILE = Path("params.yaml")


def read_yaml(path: Path) -> ConfigBox:
    """Load a YAML mapping, naming the file in every failure."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(content).__name__}")
    return ConfigBox(content)


class ConfigurationManager:
    """Builds one frozen entity per component from the two YAML files.

    root is the folder that relative paths in config.yaml are resolved against (the repo root).
    """

    def __init__(self, config_path: str | Path | None = None, params_path: str | Path | None = None,
                 root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else Path.cwd()
        self.config_path = Path(config_path) if config_path else self.root / CONFIG_FILE
        self.params_path = Path(params_path) if params_path else self.root / PARAMS_FILE
        self.config = read_yaml(self.config_path)
        self.params = read_yaml(self.params_path)
        check_against_schema(self.config.to_dict(), CONFIG_SCHEMA, self.config_path.name)
        check_against_schema(self.params.to_dict(), PARAMS_SCHEMA, self.params_path.name)
        self._check_relations()

    def _check_relations(self) -> None:
        """Constraints between keys, which a per-key schema cannot express."""
        problems = []
        name = self.params_path.name
        split = self.params.data.split
        total = split.train + split.val + split.test
        if abs(total - 1.0) > 1e-6:
            problems.append(f"{name}: data.split: train + val + test must be 1.0, got {total:g}")
        for section, low, high in (("data.demo", "jpeg_quality_min", "jpeg_quality_max"),
                                   ("train.augment", "jpeg_quality_min", "jpeg_quality_max")):
            node = self.params
            for part in section.split("."):
                node = node[part]
            if node[low] > node[high]:
                problems.append(f"{name}: {section}.{low} ({node[low]}) must not exceed "
                                f"{section}.{high} ({node[high]})")
        names = self.params.data.class_names
        shared = {n.lower() for n in names.fake} & {n.lower() for n in names.real}
        if shared:
            problems.append(f"{name}: data.class_names: {sorted(shared)} listed as both fake and real")
        train = self.params.train
        if train.head_epochs + (train.fine_tune_epochs if train.fine_tune_layers != 0 else 0) == 0:
            problems.append(f"{name}: train: head_epochs and fine_tune_epochs (with fine_tune_layers "
                            "> 0) are both zero, so nothing would be trained")
        if problems:
            raise ConfigError("\n".join(problems))

    def _path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.root / path

    def _data_source(self, source: str) -> str:
        """A local path in data.source is relative to the repo root, like every other path."""
        lowered = source.lower()
        if lowered == "demo" or lowered.startswith(("demo:", "kaggle:")) or "://" in source:
            return source
        return str(self._path(str(Path(source).expanduser())))

    def _class_names(self) -> dict[str, tuple[str, ...]]:
        names = self.params.data.class_names
        return {cls: tuple(n.lower() for n in names[cls]) for cls in ("fake", "real")}

    def _freeze_batch_norm(self) -> bool:
        setting: Any = self.params.model.freeze_batch_norm
        if setting == "auto":
            # Pretrained statistics are worth keeping; from scratch they must be learned.
            return self.params.model.weights.lower() != "none"
        return bool(setting)

    def get_data_ingestion_config(self) -> DataIngestionConfig:
        paths, data = self.config.data_ingestion, self.params.data
        return DataIngestionConfig(
            root_dir=self._path(paths.root_dir),
            dataset_dir=self._path(paths.dataset_dir),
            index_file=self._path(paths.index_file),
            report_file=self._path(paths.report_file),
            source=self._data_source(str(data.source)),
            sha256=data.sha256.lower() if data.sha256 else None,
            class_names=self._class_names(),
            max_archive_members=int(data.max_archive_members),
            max_extracted_bytes=int(data.max_extracted_mb * 1024 * 1024),
            download_timeout_s=float(data.download_timeout_s),
            demo=DemoDataConfig(**data.demo.to_dict()),
        )

    def get_data_validation_config(self) -> DataValidationConfig:
        paths, data = self.config.data_validation, self.params.data
        return DataValidationConfig(
            root_dir=self._path(paths.root_dir),
            dataset_dir=self._path(self.config.data_ingestion.dataset_dir),
            index_file=self._path(self.config.data_ingestion.index_file),
            manifest_file=self._path(paths.manifest_file),
            quarantine_file=self._path(paths.quarantine_file),
            split_summary_file=self._path(paths.split_summary_file),
            class_names=self._class_names(),
            min_image_size=int(data.min_image_size),
            max_bad_fraction=float(data.max_bad_fraction),
            near_duplicate_hamming=int(data.near_duplicate_hamming),
            split=SplitFractions(**{k: float(v) for k, v in data.split.items()}),
            seed=int(data.seed),
        )

    def get_model_config(self) -> ModelConfig:
        paths, model = self.config.prepare_model, self.params.model
        weights = str(model.weights)
        if weights.lower() in ("imagenet", "none"):
            weights = weights.lower()
        else:
            weights = str(self._path(weights))
        return ModelConfig(
            root_dir=self._path(paths.root_dir),
            model_file=self._path(paths.model_file),
            summary_file=self._path(paths.summary_file),
            alpha=float(model.alpha),
            image_size=int(model.image_size),
            weights=weights,
            dropout=float(model.dropout),
            batch_norm_momentum=float(model.batch_norm_momentum),
            freeze_batch_norm=self._freeze_batch_norm(),
            seed=int(model.seed),
        )

    def get_training_config(self) -> TrainingConfig:
        paths, train = self.config.training, self.params.train
        return TrainingConfig(
            root_dir=self._path(paths.root_dir),
            base_model_file=self._path(self.config.prepare_model.model_file),
            manifest_file=self._path(self.config.data_validation.manifest_file),
            dataset_dir=self._path(self.config.data_ingestion.dataset_dir),
            model_file=self._path(paths.model_file),
            history_file=self._path(paths.history_file),
            checkpoint_file=self._path(paths.checkpoint_file),
            backup_dir=self._path(paths.backup_dir),
            run_file=self._path(paths.run_file),
            image_size=int(self.params.model.image_size),
            batch_size=int(train.batch_size),
            head_epochs=int(train.head_epochs),
            head_learning_rate=float(train.head_learning_rate),
            fine_tune_epochs=int(train.fine_tune_epochs),
            fine_tune_layers=train.fine_tune_layers,
            fine_tune_learning_rate=float(train.fine_tune_learning_rate),
            freeze_batch_norm=self._freeze_batch_norm(),
            early_stopping_patience=int(train.early_stopping_patience),
            reduce_lr_patience=int(train.reduce_lr_patience),
            reduce_lr_factor=float(train.reduce_lr_factor),
            class_weights=bool(train.class_weights),
            cache=bool(train.cache),
            seed=int(train.seed),
            augment=AugmentationConfig(**train.augment.to_dict()),
            strategy=train.strategy,
            learning_rate_scaling=train.learning_rate_scaling,
            # YAML reads bare on/off as booleans.
            mixed_precision={True: "on", False: "off"}.get(train.mixed_precision, train.mixed_precision),
        )

    def get_evaluation_config(self) -> EvaluationConfig:
        paths, evaluate = self.config.evaluation, self.params.evaluate
        threshold = evaluate.threshold
        return EvaluationConfig(
            root_dir=self._path(paths.root_dir),
            model_file=self._path(self.config.training.model_file),
            manifest_file=self._path(self.config.data_validation.manifest_file),
            dataset_dir=self._path(self.config.data_ingestion.dataset_dir),
            scores_file=self._path(paths.scores_file),
            predictions_file=self._path(paths.predictions_file),
            plots_dir=self._path(paths.plots_dir),
            split_summary_file=self._path(self.config.data_validation.split_summary_file),
            training_run_file=self._path(self.config.training.run_file),
            image_size=int(self.params.model.image_size),
            batch_size=int(evaluate.batch_size),
            threshold=threshold if isinstance(threshold, str) else float(threshold),
            calibration_bins=int(evaluate.calibration_bins),
            bootstrap=int(evaluate.bootstrap),
            calibrate=bool(evaluate.calibrate),
            seed=int(evaluate.seed),
        )

    def get_robustness_config(self) -> RobustnessConfig:
        paths, evaluate = self.config.robustness, self.params.evaluate
        return RobustnessConfig(
            model_file=self._path(self.config.training.model_file),
            manifest_file=self._path(self.config.data_validation.manifest_file),
            dataset_dir=self._path(self.config.data_ingestion.dataset_dir),
            scores_file=self._path(self.config.evaluation.scores_file),
            metrics_file=self._path(paths.metrics_file),
            plot_file=self._path(paths.plot_file),
            png_file=self._path(paths.png_file),
            training_run_file=self._path(self.config.training.run_file),
            image_size=int(self.params.model.image_size),
            batch_size=int(evaluate.batch_size),
            severities={name: tuple(float(v) for v in values)
                        for name, values in evaluate.robustness.to_dict().items()},
            seed=int(evaluate.seed),
        )

    def get_cross_dataset_config(self) -> CrossDatasetConfig:
        paths, evaluate = self.config.cross_dataset, self.params.evaluate
        return CrossDatasetConfig(
            root_dir=self._path(paths.root_dir),
            results_file=self._path(paths.results_file),
            model_file=self._path(self.config.training.model_file),
            scores_file=self._path(self.config.evaluation.scores_file),
            training_run_file=self._path(self.config.training.run_file),
            ingestion=self.get_data_ingestion_config(),
            min_image_size=int(self.params.data.min_image_size),
            image_size=int(self.params.model.image_size),
            batch_size=int(evaluate.batch_size),
            extra_sets=tuple(ExtraSetConfig(name=entry["name"], source=self._data_source(entry["source"]))
                             for entry in evaluate.extra_sets),
        )

    def get_shortcut_audit_config(self) -> ShortcutAuditConfig:
        evaluate = self.params.evaluate
        return ShortcutAuditConfig(
            results_file=self._path(self.config.shortcut_audit.results_file),
            model_file=self._path(self.config.training.model_file),
            manifest_file=self._path(self.config.data_validation.manifest_file),
            dataset_dir=self._path(self.config.data_ingestion.dataset_dir),
            training_run_file=self._path(self.config.training.run_file),
            image_size=int(self.params.model.image_size),
            batch_size=int(evaluate.batch_size),
            warn_auc=float(evaluate.shortcut_warn_auc),
            seed=int(evaluate.seed),
        )

    def get_report_config(self) -> ReportConfig:
        evaluation, robustness = self.config.evaluation, self.config.robustness
        return ReportConfig(
            html_file=self._path(self.config.report.html_file),
            scores_file=self._path(evaluation.scores_file),
            predictions_file=self._path(evaluation.predictions_file),
            plots_dir=self._path(evaluation.plots_dir),
            dataset_dir=self._path(self.config.data_ingestion.dataset_dir),
            robustness_metrics_file=self._path(robustness.metrics_file),
            robustness_png_file=self._path(robustness.png_file),
            cross_dataset_file=self._path(self.config.cross_dataset.results_file),
            shortcut_audit_file=self._path(self.config.shortcut_audit.results_file),
            training_run_file=self._path(self.config.training.run_file),
            params={k: v for k, v in self.params.to_dict().items() if k != "serve"},
        )

    def get_export_config(self) -> ExportConfig:
        paths, export = self.config.export, self.params.export
        return ExportConfig(
            root_dir=self._path(paths.root_dir),
            metrics_file=self._path(paths.metrics_file),
            model_file=self._path(self.config.training.model_file),
            manifest_file=self._path(self.config.data_validation.manifest_file),
            dataset_dir=self._path(self.config.data_ingestion.dataset_dir),
            scores_file=self._path(self.config.evaluation.scores_file),
            training_run_file=self._path(self.config.training.run_file),
            project_root=self.root,
            image_size=int(self.params.model.image_size),
            batch_size=int(self.params.evaluate.batch_size),
            variants=tuple(export.variants),
            calibration_images=int(export.calibration_images),
            max_float32_diff=float(export.max_float32_diff),
            max_auc_drop=float(export.max_auc_drop),
            seed=int(self.params.train.seed),
            # Serving settings change without re-exporting; the card records what made the model.
            params={k: v for k, v in self.params.to_dict().items() if k != "serve"},
        )

    def get_serving_config(self) -> ServingConfig:
        paths, serve = self.config.serving, self.params.serve
        return ServingConfig(
            model_file=self._path(paths.model_file),
            export_dir=self._path(paths.export_dir),
            scores_file=self._path(paths.scores_file),
            backend=serve.backend,
            variant=serve.variant,
            num_threads=serve.num_threads,
            threshold=None if serve.threshold is None else float(serve.threshold),
            face_detector="off" if serve.face_detector is False else serve.face_detector,
            face_policy=serve.face_policy,
            face_min_size=int(serve.face_min_size),
            face_margin=float(serve.face_margin),
            max_request_bytes=int(serve.max_request_mb * 1024 * 1024),
            max_image_pixels=int(serve.max_image_pixels),
            max_images_per_request=int(serve.max_images_per_request),
            cors_origins=tuple(serve.cors_origins),
            training_enabled=bool(serve.training_enabled),
        )

    def get_tracking_config(self) -> TrackingConfig:
        tracking = self.config.tracking
        return TrackingConfig(
            tracking_uri=str(tracking.tracking_uri),
            experiment_name=str(tracking.experiment_name),
            registered_model_name=str(tracking.registered_model_name),
        )

    @property
    def logs_dir(self) -> Path:
        return self._path(self.config.logs_dir)
