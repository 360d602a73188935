"""Runs every section on one machine in one go and assembles the results into one dict."""
from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from deepfake_detector.benchmarks import (
    faces,
    latency,
    memory,
    preprocessing,
    roofline,
    serving,
    threads,
    training,
    video,
)
from deepfake_detector.benchmarks.exports import RUN_PIPELINE_HINT, tflite_files
from deepfake_detector.benchmarks.machine import ContentionMeter, cpu_count, machine_info
from deepfake_detector.benchmarks.settings import BenchSettings
from deepfake_detector.config.entities import TrainingConfig
from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.model_card import ModelCard, read_model_card
from deepfake_detector.inference.keras_model import load_keras_model

logger = logging.getLogger(__name__)


CONTENTION_WARNING = 0.1  # other processes' share of the CPU above which a section's numbers are flagged


def _timed(name: str, section: Callable[[], dict]) -> dict:
    """Run one section, recording its wall time and how busy other processes kept the CPU meanwhile."""
    logger.info("Benchmark section: %s", name)
    start = time.perf_counter()
    meter = ContentionMeter()
    result = section()
    result["section_wall_s"] = time.perf_counter() - start
    result["other_processes_cpu_share"] = meter.others_fraction()
    logger.info("Section %s done in %.1f s", name, result["section_wall_s"])
    share = result["other_processes_cpu_share"]
    if share is not None and share > CONTENTION_WARNING:
        logger.warning("Other processes used %.0f%% of the CPU during the %s section: its numbers are pessimistic; "
                       "rerun on a quiet machine", 100 * share, name)
    return result


def _with_roofline(rows: list[dict], flops_per_image: int, peak_gflops: float) -> None:
    """Achieved compute of each inference row, from batch throughput where there is one."""
    for row in rows:
        if row["batch"]:
            images_per_s, basis = latency.batch_throughput(row), "batch"
        else:
            images_per_s, basis = 1000.0 / row["single"]["p50_ms"], "single p50"
        row["roofline"] = {**roofline.achieved(images_per_s, flops_per_image, peak_gflops), "basis": basis}


def _worker_interpreter_threads() -> int:
    """The interpreter threads a gunicorn worker of the benchmarked shape gives each inference (the serve
    settings of the checkout this package runs from, as the serving section reads them)."""
    from deepfake_detector.serving.concurrency import THREADS_ENV, WORKERS_ENV, plan_threads
    from deepfake_detector.serving.settings import load_serving_config

    config = load_serving_config()
    shape = {WORKERS_ENV: str(serving.WORKERS), THREADS_ENV: str(serving.THREADS)}
    return plan_threads(config, environ=shape).interpreter_threads


def check_inputs(model_file: Path, export_dir: Path) -> ModelCard:
    """Fail early, before minutes of measuring, if the pipeline has not produced what is measured."""
    if not Path(model_file).is_file():
        raise ModelError(f"{model_file}: trained model not found; {RUN_PIPELINE_HINT}")
    if not Path(export_dir).is_dir():
        raise ModelError(f"{export_dir}: export folder not found; {RUN_PIPELINE_HINT}")
    return read_model_card(export_dir)


def run_benchmarks(model_file: Path, export_dir: Path, root: Path, settings: BenchSettings,
                   training_config: TrainingConfig | None = None) -> dict:
    """All sections; training only when a training config is given. Returns the results dict."""
    card = check_inputs(model_file, export_dir)
    files, skipped = tflite_files(card)
    for note in skipped:
        logger.info("Skipping LiteRT variant %s: %s", note["variant"], note["reason"])
    cores = cpu_count()
    peak = roofline.machine_peak(cores)
    results: dict = {"machine": machine_info(root), "settings": settings.to_dict(),
                     "contention_warning_share": CONTENTION_WARNING}

    model = load_keras_model(model_file)
    image_size = int(model.input_shape[1])
    flops = roofline.count_flops(model)
    results["model"] = {"file": str(model_file), "export_dir": str(export_dir), "image_size": image_size,
                        "parameters": int(model.count_params()), "flops_per_image": flops,
                        "card_threshold": card.rule.threshold}
    results["roofline"] = {**peak, "flops_per_image": flops}
    logger.info("Model %s: %d px, %.3f GFLOP per image; %s", model_file, image_size, flops / 1e9,
                peak["assumption"])

    def inference() -> dict:
        runtimes = [*latency.keras_runtimes(model, model_file, image_size), *latency.tflite_runtimes(files, cores),
                    latency.load_per_request_runtime(model_file)]
        measured = latency.measure_inference(runtimes, image_size, settings)
        _with_roofline(measured["rows"], flops, peak["peak_gflops"])
        return {**measured, "skipped": skipped, "tflite_threads": cores}

    results["inference"] = _timed("inference", inference)
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        jpeg_file = Path(scratch) / "face.jpg"
        jpeg_file.write_bytes(preprocessing.sample_jpeg())
        results["preprocessing"] = _timed(
            "preprocessing", lambda: preprocessing.measure_preprocessing(jpeg_file, image_size, settings))
        results["memory"] = _timed("memory", lambda: memory.measure_processes(
            model_file, export_dir, jpeg_file, settings.process_images, cores))
        results["serving"] = _timed("serving", lambda: serving.measure_serving(
            model_file, export_dir, jpeg_file, Path(scratch), settings))
        results["video"] = _timed("video", lambda: video.measure_video(model_file, export_dir, Path(scratch),
                                                                       settings))
    results["faces"] = _timed("faces", lambda: faces.measure_faces(settings, _worker_interpreter_threads(),
                                                                   image_size))
    if "float32" in files:
        results["threads"] = _timed("threads", lambda: threads.measure_threads(
            files["float32"], image_size, max(1, cores // settings.thread_clients), settings))
    else:
        results["threads"] = {"skipped": "no float32 LiteRT export"}
    if training_config is None:
        results["training"] = {"skipped": "--skip-training"}
    else:
        results["training"] = _timed("training", lambda: training.measure_training(
            training_config, warmup_steps=settings.train_warmup_steps, steps=settings.train_steps,
            batch_size=settings.train_batch_size))
    return results
