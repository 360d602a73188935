"""Serving latency of a row's float32 TFLite export, single image, in this process, measured in rounds
interleaved with the baseline row's export: both see the same machine load, so their ratio holds even
when rows are measured hours apart or on a busy machine."""
from __future__ import annotations

import logging
from pathlib import Path

from deepfake_detector.benchmarks.latency import random_images
from deepfake_detector.benchmarks.machine import cpu_count, read_cpuinfo
from deepfake_detector.benchmarks.timing import ratio, summarize_ms, time_calls

logger = logging.getLogger(__name__)

VARIANT = "float32"
WARMUP = 3
ROUNDS = 5
REPS_PER_ROUND = 20   # 100 single-image calls per model


def measure_latency(model_file: Path, baseline_file: Path | None) -> dict:
    """p50 (and p95, mean, min) of single-image predictions of model_file, the baseline's measured alongside
    (model_file itself when it is the baseline; no ratio when baseline_file is None)."""
    from deepfake_detector.inference.predictor import TFLitePredictor

    models = {"row": TFLitePredictor(model_file, variant=VARIANT)}
    if baseline_file is not None and Path(baseline_file).resolve() != Path(model_file).resolve():
        models["baseline"] = TFLitePredictor(baseline_file, variant=VARIANT)
    images = {name: random_images(1, predictor.image_size) for name, predictor in models.items()}
    samples: dict[str, list[float]] = {name: [] for name in models}
    for index in range(ROUNDS):
        for name, predictor in models.items():
            image = images[name]
            samples[name] += time_calls(lambda: predictor.predict(image), REPS_PER_ROUND,  # noqa: B023 - called now
                                        warmup=WARMUP if index == 0 else 0)
    row = summarize_ms(samples["row"])
    if "baseline" in models:
        baseline_p50 = summarize_ms(samples["baseline"])["p50_ms"]
    else:
        baseline_p50 = row["p50_ms"] if baseline_file is not None else None
    for predictor in models.values():
        predictor.close()
    logger.info("float32 TFLite p50 %.2f ms%s", row["p50_ms"],
                f" (baseline {baseline_p50:.2f} ms)" if baseline_p50 is not None else "")
    return {"variant": VARIANT, "threads": models["row"].num_threads, **row, "baseline_p50_ms": baseline_p50,
            "ratio_to_baseline": ratio(row["p50_ms"], baseline_p50),
            "cpu_model": read_cpuinfo()["model_name"], "cores": cpu_count()}
