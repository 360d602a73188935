"""Section 3: what one serving process costs with each backend: peak RSS, import and start-up time.

Each backend runs in a fresh interpreter, since peak RSS and imports are per process and the
point is whether the LiteRT path keeps TensorFlow out of memory altogether. Peak RSS is the
child's VmHWM: on Linux, getrusage's ru_maxrss survives fork and exec, so a child of this
(TensorFlow-laden) process would report the parent's peak; ru_maxrss is kept in the JSON as a
second opinion.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import deepfake_detector
from deepfake_detector.benchmarks.errors import BenchmarkError
from deepfake_detector.benchmarks.timing import ratio

logger = logging.getLogger(__name__)

MEASURED_BACKENDS = ("tflite", "keras")  # auto would pick one of them
TIMEOUT_S = 300
# Runs in the child; argv: launch time, model file, export dir, backend, threads, image file, count.
SERVING_SCRIPT = """
import json, resource, sys, time
launched = float(sys.argv[1])
start = time.perf_counter()
from deepfake_detector.inference import load_predictor
imported = time.perf_counter()
predictor = load_predictor(sys.argv[2], export_dir=sys.argv[3], backend=sys.argv[4], num_threads=int(sys.argv[5]))
loaded = time.perf_counter()
data = open(sys.argv[6], "rb").read()
first = predictor.predict_image(data)
first_done = time.time()
for _ in range(int(sys.argv[7]) - 1):
    predictor.predict_image(data)
done = time.perf_counter()
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    status = open("/proc/self/status").read().split("\\n")
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(json.dumps({
    "backend": predictor.backend, "variant": predictor.variant,
    "import_s": imported - start, "load_s": loaded - imported,
    "time_to_first_prediction_s": first_done - launched,
    "predict_s_per_image": (done - loaded) / int(sys.argv[7]),
    "peak_rss_mib": peak_kib / 1024.0,
    "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    "tensorflow_imported": "tensorflow" in sys.modules,
    "first_score": float(first),
}))
"""


def run_serving_process(backend: str, model_file: Path, export_dir: Path, image_file: Path, images: int,
                        num_threads: int) -> dict:
    """Launch one serving interpreter and return what it measured about itself."""
    env = dict(os.environ)
    package_root = str(Path(deepfake_detector.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = [sys.executable, "-c", SERVING_SCRIPT, repr(time.time()), str(model_file), str(export_dir), backend,
               str(num_threads), str(image_file), str(max(images, 1))]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
    if result.returncode != 0:
        raise BenchmarkError(f"the {backend} serving process failed (exit {result.returncode}):\n"
                           f"{result.stderr.strip()[-2000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    measured["requested_backend"] = backend
    logger.info("Serving process %s: peak RSS %.0f MiB, import %.2f s, load %.2f s, first prediction after "
                "%.2f s, TensorFlow imported: %s", backend, measured["peak_rss_mib"], measured["import_s"],
                measured["load_s"], measured["time_to_first_prediction_s"], measured["tensorflow_imported"])
    return measured


def measure_processes(model_file: Path, export_dir: Path, image_file: Path, images: int, num_threads: int) -> dict:
    processes = {backend: run_serving_process(backend, model_file, export_dir, image_file, images, num_threads)
                 for backend in MEASURED_BACKENDS}
    return {
        "images_per_process": images,
        "processes": processes,
        "rss_ratio_keras_over_tflite": ratio(processes["keras"]["peak_rss_mib"], processes["tflite"]["peak_rss_mib"]),
        "target": "tflite peak RSS <= one third of keras",
    }
