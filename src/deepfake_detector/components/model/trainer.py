"""Trains the prepared detector in two phases (head, then fine-tuning) and keeps the best epoch.

Training takes at least train.min_steps optimizer steps: on a small train split the last phase gets
more epochs than params say (a from-scratch model sits at chance for its first few dozen steps), and
early stopping and learning-rate drops only watch validation AUC once those steps are done.

A run killed at any point (even SIGKILL) and started again with the same settings resumes from
its last completed epoch; a finished phase is not trained again. Everything needed for that
lives in `backup_dir` (its layout and rules: resume.py), which is removed once the trained
model is saved.

Training runs under the tf.distribute strategy of train.strategy (see distribution.py):
train.batch_size is per replica, the learning rates follow train.learning_rate_scaling, and
with several workers only the chief writes the declared outputs; every other worker runs the
same code, saves included, into its own folder (distribution.worker_dir), keeping its own
backup there to resume from.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import keras
import numpy as np

from deepfake_detector.components.data.datasets import VIDEO_COLUMN, build_dataset, read_manifest, split_rows
from deepfake_detector.components.model.augmentation import build_augmentation
from deepfake_detector.components.model.distribution import (
    LOCAL_ROLE,
    ClusterRole,
    cluster_role,
    global_batch_size,
    make_strategy,
    model_for_replicas,
    prepare_multi_worker_fit,
    resolve_mixed_precision,
    scaled_learning_rate,
    worker_dir,
    workers_agree,
)
from deepfake_detector.components.model.native_crop import build_random_crop, chain
from deepfake_detector.components.model.resume import (
    TrainingBackup,
    fingerprint,
    read_best,
    read_history,
    truncate_history,
)
from deepfake_detector.components.model.resynthesis import build_resynthesis, expected_class_counts
from deepfake_detector.config.entities import TrainingConfig
from deepfake_detector.contracts.errors import DataValidationError, ModelError
from deepfake_detector.contracts.labels import FAKE, REAL
from deepfake_detector.contracts.layers import BACKBONE_NAME
from deepfake_detector.inference.keras_model import load_keras_model
from deepfake_detector.utils.files import atomic_path, write_json_atomic

logger = logging.getLogger(__name__)

MONITOR = "val_auc"


@dataclass(frozen=True, eq=False)
class TrainingResult:
    model_file: Path
    history_file: Path
    best_epoch: int  # as numbered in history.csv: from 0, continuing across phases
    best_val_auc: float
    epochs_run: int  # rows in history.csv, including epochs run before a restart
    class_weight: dict[int, float]  # the weights applied; 1.0 each when class_weights is off
    resumed: bool  # a previous, interrupted run's progress was picked up
    val_labels: np.ndarray  # the validation split, in manifest order...
    val_probs: np.ndarray  # ...and the saved model's P(fake) for it, to judge whether it learned
    val_videos: list[str] | None = None  # each of its frames' video, when the dataset had videos


@dataclass(frozen=True)
class Phase:
    name: str
    epochs: int
    learning_rate: float
    set_trainable: Callable[[keras.Model], None]


class PlateauLearningRate(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau that leaves the rate alone before start_from_epoch, as EarlyStopping's own
    start_from_epoch does: the first epochs of a small split often sit at chance before learning starts."""

    def __init__(self, *, start_from_epoch: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.start_from_epoch = start_from_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.start_from_epoch:
            super().on_epoch_end(epoch, logs)
        elif logs is not None:  # history.csv keeps its learning_rate column
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class HistoryLogger(keras.callbacks.CSVLogger):
    """CSVLogger that appends and adds a `phase` column; epochs continue across phases."""

    def __init__(self, filename: Path, phase: str) -> None:
        super().__init__(str(filename), append=True)
        self.phase = phase

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, {**(logs or {}), "phase": self.phase})


class BestWeightsCheckpoint(keras.callbacks.Callback):
    """Keeps the weights of the best epoch by val_auc, the later epoch on a tie, across phases and
    restarts.

    The tie rule matters: on an easy validation split val_auc reaches 1.0 within a few epochs and
    stays there, while training goes on learning what validation does not show (re-synthesized
    fakes, other traces); keeping the first epoch at 1.0 would throw that away. The validation loss
    is no tie-break: with BatchNorm statistics still moving it jumps from epoch to epoch.
    Unlike ModelCheckpoint it writes atomically (a kill mid-write leaves the previous best intact)
    and records the epoch and value in `record_file`, from which a restarted run takes its
    threshold, so a resumed run cannot replace the best weights with worse ones.
    """

    def __init__(self, weights_file: Path, record_file: Path) -> None:
        super().__init__()
        self.weights_file = weights_file
        self.record_file = record_file
        record = read_best(record_file)
        self.best: float | None = record.get(MONITOR)
        self.best_epoch: int | None = record.get("epoch")

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(MONITOR)
        if value is None or math.isnan(value) or (self.best is not None and value < self.best):
            return
        with atomic_path(self.weights_file) as tmp:
            self.model.save_weights(tmp)
        self.best, self.best_epoch = float(value), int(epoch)
        write_json_atomic(self.record_file, {"epoch": self.best_epoch, MONITOR: self.best})
        logger.info("Epoch %d: %s %.4f, the best so far; weights saved to %s", epoch, MONITOR, value,
                    self.weights_file)


def balanced_class_weight(labels: Sequence[int], reals_turned_fake: float = 0.0) -> dict[int, float]:
    """n / (2 * n_c) per class, so each class contributes equally to the loss; n_c as an epoch sees
    it on average when re-synthesis turns the share reals_turned_fake of the reals into fakes."""
    empty = [label for label in (REAL, FAKE) if label not in set(labels)]
    if empty:
        raise DataValidationError(f"the train split has no images of class {empty}; cannot train")
    counts = expected_class_counts(labels, reals_turned_fake)
    return {label: len(labels) / (2 * counts[label]) for label in (REAL, FAKE)}


def _shard_by_data(dataset):
    """Make each worker take its own part of every global batch (tf.data AutoShardPolicy.DATA).

    Sharding by FILE, TensorFlow's preference, is wrong for this pipeline: it starts from the
    manifest's list of image paths held in memory (no file-reading dataset for FILE to split), then
    decodes, caches and shuffles. So every worker runs the same pipeline with the same seed and keeps
    its part of each batch: each image is seen once per epoch, at the price of every worker decoding
    every image. Strategies with one worker ignore the option.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


@dataclass(frozen=True)
class TrainingData:
    train: Any                         # tf.data.Dataset of (images, labels), shuffled and augmented
    val: Any                           # the same for the val split, in manifest order
    class_weight: dict[int, float]     # the weights applied; 1.0 each when class_weights is off
    train_images: int
    val_labels: list[int]
    val_videos: list[str] | None = None  # each val frame's video ("" for a still); None without videos


def training_datasets(config: TrainingConfig, batch_size: int | None = None) -> TrainingData:
    """Train and validation tf.data pipelines batched by `batch_size`, the global batch (default
    train.batch_size: one replica), and the class weights; the test split is not read."""
    batch_size = batch_size or config.batch_size
    manifest = read_manifest(config.manifest_file)
    train_paths, train_labels = split_rows(manifest, "train", config.dataset_dir)
    val_paths, val_labels = split_rows(manifest, "val", config.dataset_dir)
    resynthesis = build_resynthesis(config.augment, config.image_size, config.seed, config.input_fit)
    turned = resynthesis.settings.probability if resynthesis is not None else 0.0
    if config.class_weights:
        class_weight = balanced_class_weight(train_labels, turned)
    else:
        class_weight = {REAL: 1.0, FAKE: 1.0}
    logger.info("Training on %d images (%d fake%s), validating on %d; class weights %s", len(train_paths),
                sum(train_labels), f", and {turned:.0%} of the reals re-synthesized as fakes" if turned else "",
                len(val_paths), class_weight)
    augment = build_augmentation(config.augment, config.image_size, config.seed)
    # Re-synthesis sees the whole image (a region may be anywhere in it), then the random crop picks the square.
    native = chain(resynthesis, build_random_crop(config.augment, config.image_size, config.seed, config.input_fit))
    train_data = build_dataset(train_paths, train_labels, config.image_size, batch_size, shuffle=True,
                               seed=config.seed, cache=config.cache, augment=augment, native_transform=native,
                               fit=config.input_fit)
    val_data = build_dataset(val_paths, val_labels, config.image_size, batch_size, cache=config.cache,
                             fit=config.input_fit)
    val_videos = (manifest.loc[manifest["split"] == "val", VIDEO_COLUMN].tolist()
                  if VIDEO_COLUMN in manifest.columns else None)
    return TrainingData(_shard_by_data(train_data), _shard_by_data(val_data), class_weight, len(train_paths),
                        list(val_labels), val_videos)


def with_min_steps(phases: Sequence[Phase], steps_per_epoch: int, min_steps: int) -> list[Phase]:
    """The phases, the last one lengthened by as many epochs as it takes to reach min_steps in all."""
    planned = sum(phase.epochs for phase in phases) * steps_per_epoch
    if not phases or planned >= min_steps:
        return list(phases)
    last = phases[-1]
    extra = math.ceil((min_steps - planned) / steps_per_epoch)
    logger.warning("The planned %d epochs make only %d optimizer steps of %d on this train split; train.min_steps "
                   "is %d, so phase %s runs %d epochs instead of %d", sum(p.epochs for p in phases), planned,
                   steps_per_epoch, min_steps, last.name, last.epochs + extra, last.epochs)
    return [*phases[:-1], dataclasses.replace(last, epochs=last.epochs + extra)]


def train_head_only(model: keras.Model) -> None:
    """The head phase's trainability: the backbone frozen."""
    model.get_layer(BACKBONE_NAME).trainable = False


def train_top_layers(model: keras.Model, count: int | str, freeze_batch_norm: bool) -> None:
    """The fine-tuning phase's trainability: the top `count` backbone layers (or "all"), BN frozen if asked."""
    backbone = model.get_layer(BACKBONE_NAME)
    backbone.trainable = True
    if count != "all":
        for layer in backbone.layers[:-count]:
            layer.trainable = False
    if freeze_batch_norm:
        # Non-trainable BN runs in inference mode in Keras 3, keeping pretrained statistics.
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


class Trainer:
    """Two-phase, resumable training of the model saved by the prepare_model stage."""

    def __init__(self, config: TrainingConfig) -> None:
        self.declared_config = config  # what params.yaml and config.yaml say, on every worker
        self.config = config  # where this process writes: the declared paths, or a worker's own folder
        self.role: ClusterRole = LOCAL_ROLE
        self.strategy = None
        self.mixed_precision = False
        self.watch_from_epoch = 0

    def run(self, callbacks: Sequence[keras.callbacks.Callback] = ()) -> TrainingResult:
        """Train, then save the best-on-validation weights as `model_file`.

        `callbacks` (e.g. an MLflow logger) are added to every phase's fit, after the trainer's own.
        """
        # First: MultiWorkerMirroredStrategy must configure the runtime before other TensorFlow work.
        self.strategy = strategy = make_strategy(self.declared_config.strategy)
        self.role = cluster_role(self.declared_config.strategy)
        if not self.role.is_chief:
            self._write_to_worker_dir()
        config = self.config
        replicas = strategy.num_replicas_in_sync
        self.mixed_precision = resolve_mixed_precision(config.mixed_precision)
        batch_size = global_batch_size(config.batch_size, replicas)
        keras.utils.set_random_seed(config.seed)
        data = training_datasets(config, batch_size)
        steps_per_epoch = math.ceil(data.train_images / batch_size)
        phases = with_min_steps(self._phases(replicas), steps_per_epoch, config.min_steps)
        # Epochs are numbered on across phases; the plateau callbacks watch from this one on.
        self.watch_from_epoch = math.ceil(config.min_steps / steps_per_epoch)
        self._log_distribution(phases, replicas, batch_size)
        backup = self._backup()
        resumed = backup.resume_or_start_fresh()
        if self.role.num_workers > 1 and not workers_agree(strategy, backup.progress([p.name for p in phases])):
            # A kill landed between two workers' end-of-epoch saves; no common point to resume from.
            logger.warning("The workers' saved progress differs; every worker starts this training over")
            backup.start_fresh()
            resumed = False
        with strategy.scope():
            model = model_for_replicas(self._load_base_model(), mixed_precision=self.mixed_precision,
                                       synchronized_batch_norm=replicas > 1)
        if self.role.num_workers > 1:
            prepare_multi_worker_fit(model, strategy, data.train.element_spec)
        checkpoint = BestWeightsCheckpoint(config.checkpoint_file, backup.best_file)
        next_epoch = 0
        for phase in phases:
            finished = backup.finished_phase(phase.name)
            if finished is not None:
                next_epoch = finished
                model.load_weights(backup.phase_weights(phase.name))
                logger.info("Phase %s finished in an earlier run; going on from epoch %d", phase.name,
                            next_epoch)
                resumed = True
                continue
            phase_resumed, next_epoch = self._fit_phase(model, phase, next_epoch, data, backup, checkpoint,
                                                        callbacks)
            resumed = resumed or phase_resumed
            with atomic_path(backup.phase_weights(phase.name)) as tmp:
                model.save_weights(tmp)
            backup.mark_finished(phase.name, next_epoch)
        best_model = self._save_best_model(checkpoint)
        epochs_run = len(read_history(config.history_file))
        backup.remove()
        logger.info("Best epoch %d of %d (%s %.4f); saved %s", checkpoint.best_epoch, epochs_run, MONITOR,
                    checkpoint.best, config.model_file)
        val_probs = np.asarray(best_model.predict(data.val, verbose=0), dtype=np.float64).reshape(-1)
        return TrainingResult(model_file=config.model_file, history_file=config.history_file,
                              best_epoch=checkpoint.best_epoch, best_val_auc=checkpoint.best,
                              epochs_run=epochs_run, class_weight=data.class_weight, resumed=resumed,
                              val_labels=np.asarray(data.val_labels, dtype=np.int64), val_probs=val_probs,
                              val_videos=data.val_videos)

    # Distribution ---------------------------------------------------------------------------

    def _write_to_worker_dir(self) -> None:
        """Point every output of this non-chief worker at its own folder.

        The worker still runs every save: in Keras 3 saving reads variables without collective ops,
        so the chief alone could save without a hang, but identical code paths on every worker keep
        it that way if that ever changes, and give the worker a backup of its own to resume from.
        """
        declared = self.declared_config
        folder = worker_dir(self.role, declared.root_dir)
        self.config = dataclasses.replace(
            declared, root_dir=folder, model_file=folder / declared.model_file.name,
            history_file=folder / declared.history_file.name, checkpoint_file=folder / declared.checkpoint_file.name,
            backup_dir=folder / declared.backup_dir.name, run_file=folder / declared.run_file.name)
        logger.info("Worker %s is not the chief: its copies of the outputs go to %s, not %s", self.role.name,
                    folder, declared.root_dir)

    def _log_distribution(self, phases: Sequence[Phase], replicas: int, batch_size: int) -> None:
        config = self.config
        rates = ", ".join(f"{phase.name} {phase.learning_rate:g}" for phase in phases)
        logger.info("Strategy %s (train.strategy %s) on %s of %d worker(s): %d replica(s), global batch %d "
                    "(%d per replica), learning rates %s (scaling %s), mixed precision %s",
                    type(self.strategy).__name__, config.strategy, self.role.name, self.role.num_workers, replicas,
                    batch_size, config.batch_size, rates or "-", config.learning_rate_scaling,
                    "on" if self.mixed_precision else "off")

    # Run state ----------------------------------------------------------------------------

    def _backup(self) -> TrainingBackup:
        """This process's backup folder, valid for the declared settings, the data and the base model."""
        config = self.config
        if not config.base_model_file.is_file():
            raise ModelError(f"{config.base_model_file}: base model not found; run the prepare_model stage first")
        key = fingerprint(self.declared_config, self.mixed_precision, config.manifest_file, config.base_model_file)
        return TrainingBackup(config.backup_dir, key, outputs=(config.history_file, config.checkpoint_file))

    def _load_base_model(self) -> keras.Model:
        return load_keras_model(self.config.base_model_file, what="base model", made_by="prepare_model")

    def _save_best_model(self, checkpoint: BestWeightsCheckpoint) -> keras.Model:
        """The base architecture with the best epoch's weights, saved without optimizer state."""
        if checkpoint.best is None:
            raise ModelError(f"no epoch produced a finite {MONITOR}; check the validation split in "
                             f"{self.config.manifest_file}")
        model = self._load_base_model()
        model.load_weights(self.config.checkpoint_file)
        with atomic_path(self.config.model_file) as tmp:
            model.save(tmp, include_optimizer=False)
        return model

    # Phases -------------------------------------------------------------------------------

    def _phases(self, replicas: int) -> list[Phase]:
        """The phases to run, with learning rates scaled for `replicas` by train.learning_rate_scaling."""
        config = self.config

        def rate(learning_rate: float) -> float:
            return scaled_learning_rate(learning_rate, replicas, config.learning_rate_scaling)

        phases = []
        if config.head_epochs > 0:
            phases.append(Phase("head", config.head_epochs, rate(config.head_learning_rate), train_head_only))
        if config.fine_tune_epochs > 0 and config.fine_tune_layers != 0:
            phases.append(Phase("fine_tune", config.fine_tune_epochs, rate(config.fine_tune_learning_rate),
                                partial(train_top_layers, count=config.fine_tune_layers,
                                        freeze_batch_norm=config.freeze_batch_norm)))
        return phases

    def _fit_phase(self, model: keras.Model, phase: Phase, first_epoch: int, data: TrainingData,
                   backup: TrainingBackup, checkpoint: BestWeightsCheckpoint,
                   user_callbacks: Sequence[keras.callbacks.Callback]) -> tuple[bool, int]:
        """Run one phase's fit, resuming from its backup if one exists; returns (resumed, next epoch)."""
        config = self.config
        start = backup.interrupted_epoch(phase.name)
        resumed = start is not None
        start = first_epoch if start is None else start
        # Rows of epochs after the state being resumed were written by the killed run; they rerun now.
        truncate_history(config.history_file, start)
        last_epoch = first_epoch + phase.epochs
        phase.set_trainable(model)
        with self.strategy.scope():
            optimizer = keras.optimizers.Adam(learning_rate=phase.learning_rate)
            if self.mixed_precision:
                # float16 gradients underflow without loss scaling.
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            model.compile(optimizer=optimizer, loss="binary_crossentropy",
                          metrics=[keras.metrics.AUC(name="auc"), "accuracy"])
        trainable = sum(int(math.prod(v.shape)) for v in model.trainable_weights)
        if resumed:
            logger.info("Phase %s: resuming from its backup at epoch %d of %d..%d", phase.name, start,
                        first_epoch, last_epoch - 1)
        else:
            logger.info("Phase %s: epochs %d..%d at learning rate %g, %d trainable parameters", phase.name,
                        first_epoch, last_epoch - 1, phase.learning_rate, trainable)
        callbacks = [
            PlateauLearningRate(monitor=MONITOR, mode="max", factor=config.reduce_lr_factor,
                                patience=config.reduce_lr_patience, start_from_epoch=self.watch_from_epoch),
            HistoryLogger(config.history_file, phase.name),
            keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=config.early_stopping_patience,
                                          start_from_epoch=self.watch_from_epoch),
            checkpoint,  # before the backup: a kill in between reruns the epoch, never loses a best
            keras.callbacks.BackupAndRestore(str(backup.phase_dir(phase.name)), double_checkpoint=True,
                                             delete_checkpoint=False),
            *user_callbacks,
        ]
        history = model.fit(data.train, validation_data=data.val, epochs=last_epoch,
                            initial_epoch=first_epoch, shuffle=False,  # the dataset shuffles itself
                            class_weight=data.class_weight if config.class_weights else None,
                            callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
        # BackupAndRestore leaves the restored epoch on the model; the next fit must not inherit it.
        model._initial_epoch = None
        epochs_done = len(history.epoch)
        next_epoch = start + epochs_done
        logger.info("Phase %s: ran %d epochs, next epoch %d", phase.name, epochs_done, next_epoch)
        return resumed, next_epoch
