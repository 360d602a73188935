"""Section 5: does the trainer's input pipeline keep the model busy?

The same compiled model is fed three ways, in both training phases: the trainer's own tf.data
pipeline (JPEG files, decode, cache, shuffle, augmentation: exactly as `Trainer` builds it),
pre-decoded images from memory with no augmentation (the ceiling: no input cost at all), and
from memory with the trainer's augmentation (separates decode cost from augmentation cost).
If files/memory is near 1, input is not the bottleneck.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deepfake_detector.benchmarks.errors import BenchmarkError
from deepfake_detector.benchmarks.timing import ratio, summarize_ms
from deepfake_detector.config.entities import TrainingConfig

logger = logging.getLogger(__name__)

PHASES = ("head", "fine_tune")
# Run order: the in-memory feed first, so that tracing falls in its warm-up and the files feed's
# first step shows only what every epoch of real training starts with (filling the shuffle buffer).
FEEDS = ("memory", "files", "memory_augmented")
TARGET = 0.9


def _step_timer(warmup_steps: int, steps: int, description: str):
    import keras

    class StepTimer(keras.callbacks.Callback):
        """Wall time between consecutive batch ends, data wait included; warm-up steps dropped."""

        def __init__(self) -> None:
            super().__init__()
            self.ends: list[float] = []
            self.progress = tqdm(total=warmup_steps + steps, desc=description, unit="step", leave=False,
                                 disable=None)  # no bar when output is not a terminal (logs, CI)

        def on_train_begin(self, logs=None):
            self.begin = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())
            self.progress.update(1)

        def on_train_end(self, logs=None):
            self.progress.close()

        def step_seconds(self) -> list[float]:
            return list(np.diff([self.begin, *self.ends])[warmup_steps:])

        def first_step_seconds(self) -> float:
            return self.ends[0] - self.begin

    return StepTimer()


def _compile_for_phase(model, phase: str, config: TrainingConfig) -> None:
    """Trainability and compile as the trainer sets them for `phase`."""
    import keras

    from deepfake_detector.components.model.trainer import train_head_only, train_top_layers

    learning_rate = config.head_learning_rate if phase == "head" else config.fine_tune_learning_rate
    if phase == "head":
        train_head_only(model)
    else:
        if config.fine_tune_layers == 0:
            raise BenchmarkError("params.yaml: train.fine_tune_layers is 0; there is no fine-tuning phase to time")
        train_top_layers(model, config.fine_tune_layers, config.freeze_batch_norm)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc"), "accuracy"])


def _in_memory_images(config: TrainingConfig, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` training images decoded exactly as the file pipeline decodes them."""
    from deepfake_detector.components.data.datasets import build_dataset, read_manifest, split_rows

    paths, labels = split_rows(read_manifest(config.manifest_file), "train", config.dataset_dir)
    paths, labels = paths[:count], labels[:count]
    batches = list(build_dataset(paths, labels, config.image_size, config.batch_size,
                                 fit=config.input_fit).as_numpy_iterator())
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def _feeds(config: TrainingConfig, steps: int) -> tuple[dict, dict | None, int]:
    """The three datasets (each endless, so any step count fits a small dataset), the class weights
    the trainer would apply, and how many distinct images the in-memory feeds cycle through."""
    import tensorflow as tf

    from deepfake_detector.components.model.augmentation import build_augmentation
    from deepfake_detector.components.model.trainer import training_datasets

    # The trainer's own input, so any change to how it builds it is measured here too.
    training_data = training_datasets(config)
    files, class_weight = training_data.train, training_data.class_weight
    images, labels = _in_memory_images(config, config.batch_size * steps)
    memory = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(config.batch_size)
    augment = build_augmentation(config.augment, config.image_size, config.seed)
    autotune = tf.data.AUTOTUNE
    augmented = memory if augment is None else memory.map(lambda x, y: (augment(x, training=True), y),
                                                          num_parallel_calls=autotune)
    feeds = {"files": files.repeat(), "memory": memory.prefetch(autotune),
             "memory_augmented": augmented.prefetch(autotune)}
    return feeds, (class_weight if config.class_weights else None), len(images)


def check_training_inputs(config: TrainingConfig) -> None:
    """Fail before any measuring if the stages this section reads from have not run."""
    for path, stage in ((config.base_model_file, "prepare_model"), (config.manifest_file, "validate")):
        if not Path(path).is_file():
            raise BenchmarkError(f"{path}: not found (written by the {stage} stage); run `dvc repro` (or "
                                 "`make run`) first")


def measure_training(config: TrainingConfig, *, warmup_steps: int, steps: int, batch_size: int | None = None,
                     phases: tuple[str, ...] = PHASES) -> dict:
    """Steady-state images/s per phase and feed; one fit per feed, its first steps untimed.

    The train function is traced once per phase (compile resets it) and reused by the other
    feeds, whose element specs are identical, so the first feed's warm-up also absorbs tracing.
    """
    import keras

    from deepfake_detector.inference.keras_model import load_keras_model

    if batch_size is not None:
        config = dataclasses.replace(config, batch_size=batch_size)
    check_training_inputs(config)
    keras.utils.set_random_seed(config.seed)
    total_steps = warmup_steps + steps
    feeds, class_weight, memory_images = _feeds(config, total_steps)
    model = load_keras_model(config.base_model_file, what="base model", made_by="prepare_model")
    results: dict = {}
    for phase in phases:
        _compile_for_phase(model, phase, config)
        trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        phase_results: dict = {"trainable_parameters": trainable, "feeds": {}}
        for feed in FEEDS:
            timer = _step_timer(warmup_steps, steps, f"train {phase} / {feed}")
            start = time.perf_counter()
            model.fit(feeds[feed], epochs=1, steps_per_epoch=total_steps, class_weight=class_weight,
                      callbacks=[timer], verbose=0, shuffle=False)
            returned = time.perf_counter()
            seconds = timer.step_seconds()
            images_per_s = float(config.batch_size * len(seconds) / sum(seconds))
            phase_results["feeds"][feed] = {"images_per_s": images_per_s, "step": summarize_ms(seconds),
                                            "first_step_s": timer.first_step_seconds(),
                                            "before_first_step_s": timer.begin - start,
                                            "after_last_step_s": returned - timer.ends[-1],
                                            "fit_wall_s": returned - start}
            logger.info("Training %s, %s feed: %.1f images/s (step p50 %.0f ms; fit %.1f s with warm-up)", phase,
                        feed, images_per_s, phase_results["feeds"][feed]["step"]["p50_ms"],
                        phase_results["feeds"][feed]["fit_wall_s"])
        rates = {feed: phase_results["feeds"][feed]["images_per_s"] for feed in FEEDS}
        phase_results["files_over_memory"] = ratio(rates["files"], rates["memory"])
        phase_results["memory_augmented_over_memory"] = ratio(rates["memory_augmented"], rates["memory"])
        results[phase] = phase_results
    return {"batch_size": config.batch_size, "image_size": config.image_size, "warmup_steps": warmup_steps,
            "steps": steps, "in_memory_images": memory_images, "augmentation": config.augment.enabled,
            "cache": config.cache, "class_weights": config.class_weights, "target_files_over_memory": TARGET,
            "phases": results}
