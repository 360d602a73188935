"""Section 1: single-image latency and batch throughput of every way the model can be served.

Keras `model.predict` is the baseline (what the project used before the export stage); every
other runtime is reported as a ratio against it, measured in the same process and run.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deepfake_detector.benchmarks.settings import BenchSettings
from deepfake_detector.benchmarks.timing import ratio, summarize_ms, time_calls

logger = logging.getLogger(__name__)

BASELINE = "keras predict"


@dataclass(frozen=True)
class Runtime:
    name: str
    kind: str  # keras | tf.function | tflite | load per request
    predict: Callable[[np.ndarray], np.ndarray] | None  # None: only the single-image call applies
    single: Callable[[np.ndarray], object]
    variant: str | None = None
    file: Path | None = None


def random_images(count: int, image_size: int, seed: int = 0) -> np.ndarray:
    """float32 pixels in [0, 255]: the models' input contract; latency does not depend on content."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(count, image_size, image_size, 3)).astype(np.float32)


def keras_runtimes(model, model_file: Path, image_size: int) -> list[Runtime]:
    """Keras predict (the baseline) and the same model through a traced tf.function."""
    import tensorflow as tf

    def keras_predict(images):
        return model.predict(images, batch_size=len(images), verbose=0)

    # A fixed signature (any batch) traces once; model.predict rebuilds its data pipeline every call.
    serve = tf.function(lambda x: model(x, training=False),
                        input_signature=[tf.TensorSpec((None, image_size, image_size, 3), tf.float32)])

    def traced(images):
        return serve(tf.constant(images)).numpy()

    return [Runtime(BASELINE, "keras", keras_predict, keras_predict, file=model_file),
            Runtime("tf.function", "tf.function", traced, traced, file=model_file)]


def load_per_request_runtime(model_file: Path) -> Runtime:
    """Load the .h5 and predict for every request, as the original app did: the cost of not holding a model."""
    from deepfake_detector.inference.keras_model import load_keras_model

    def load_per_request(images):
        return load_keras_model(model_file).predict(images, verbose=0)

    return Runtime("load per request", "load per request", None, load_per_request, file=model_file)


def tflite_runtimes(files: dict[str, Path], num_threads: int) -> list[Runtime]:
    from deepfake_detector.inference.predictor import TFLitePredictor

    runtimes = []
    for variant, path in files.items():
        predictor = TFLitePredictor(path, num_threads=num_threads, variant=variant)
        runtimes.append(Runtime(f"tflite {variant}", "tflite", predictor.predict, predictor.predict,
                                variant=variant, file=path))
    return runtimes


def measure_runtime(runtime: Runtime, images: np.ndarray, settings: BenchSettings) -> dict:
    """p50/p95 of single-image calls and images/s of batch calls for one runtime."""
    single_image = images[:1]
    if runtime.predict is None:  # loading is the cost being shown; warming it up would hide it
        single = summarize_ms(time_calls(lambda: runtime.single(single_image), settings.load_reps))
        batch = None
    else:
        single = summarize_ms(time_calls(lambda: runtime.single(single_image), settings.single_reps,
                                         warmup=settings.warmup))
        batch_images = images[:settings.batch_size]
        samples = time_calls(lambda: runtime.predict(batch_images), settings.batch_reps, warmup=1)
        seconds = float(np.median(samples))
        batch = {"batch_size": len(batch_images), "reps": len(samples), "median_s": seconds,
                 "images_per_s": len(batch_images) / seconds}
    return {"name": runtime.name, "kind": runtime.kind, "variant": runtime.variant,
            "file": str(runtime.file) if runtime.file else None, "single": single, "batch": batch}


def measure_inference(runtimes: list[Runtime], image_size: int, settings: BenchSettings) -> dict:
    """Every runtime on the same images, then ratios against the Keras predict row."""
    images = random_images(max(settings.batch_size, 1), image_size)
    rows = []
    for runtime in tqdm(runtimes, desc="inference runtimes", unit="runtime", disable=None):
        start = time.perf_counter()
        row = measure_runtime(runtime, images, settings)
        logger.info("%s: single p50 %.2f ms%s (%.1f s)", runtime.name, row["single"]["p50_ms"],
                    f", batch-{row['batch']['batch_size']} {row['batch']['images_per_s']:.1f} img/s"
                    if row["batch"] else "", time.perf_counter() - start)
        rows.append(row)
    baseline = next((r for r in rows if r["name"] == BASELINE), None)
    for row in rows:
        row["speedup_p50_vs_keras_predict"] = ratio(baseline and baseline["single"]["p50_ms"],
                                                    row["single"]["p50_ms"])
        row["batch_throughput_vs_keras_predict"] = ratio(batch_throughput(row), baseline and batch_throughput(baseline))
    return {"baseline": BASELINE, "rows": rows}


def batch_throughput(row: dict) -> float | None:
    """images/s of a row's batch calls; None for rows without batch calls (load per request)."""
    return row["batch"]["images_per_s"] if row["batch"] else None
