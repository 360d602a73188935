"""Section 3: what one serving process costs with each backend: peak RSS, import and start-up time; and
the peak extra memory of turning one 40 MP camera JPEG into model input.

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
import tempfile
import time
from pathlib import Path

import deepfake_detector
from deepfake_detector.benchmarks.errors import BenchmarkError
from deepfake_detector.benchmarks.timing import ratio

logger = logging.getLogger(__name__)

MEASURED_BACKENDS = ("tflite", "keras")  # auto would pick one of them
TIMEOUT_S = 300
LARGE_JPEG_SIZE = (8000, 5000)  # 40 MP, the serving pixel cap, with an EXIF rotation as phones write
LARGE_JPEG_TARGET_MIB = 150  # issue 15
LARGE_JPEG_INPUT_SIZE = 224  # the default model input (params.yaml: model.image_size)
# The serving path per fit, and the full-resolution path it replaced (decode, turn upright, resize).
LARGE_JPEG_PATHS = ("resize", "crop", "full decode + resize")
# Runs in the child; argv: image file, path (one of LARGE_JPEG_PATHS), model input size. Peak extra memory:
# the peak RSS (VmHWM, reset through clear_refs once the imports are warm) above the RSS before the call.
LARGE_JPEG_SCRIPT = """
import json, sys
from deepfake_detector.inference.images import decode_image, load_image, resize_for_model
def status_kib(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key + ":"))
data, path, size = open(sys.argv[1], "rb").read(), sys.argv[2], int(sys.argv[3])
caps = {"max_bytes": len(data), "max_pixels": 10 ** 9, "upright": True}
load_image(open(sys.argv[4], "rb").read(), size)  # warm: imports, Pillow's plugins
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")
before = status_kib("VmRSS")
if path == "full decode + resize":
    image = resize_for_model(decode_image(data, **caps), size)
else:
    image = load_image(data, size, fit=path, **caps)
assert image.shape == (size, size, 3)
print(json.dumps({"peak_extra_mib": (status_kib("VmHWM") - before) / 1024.0}))
"""
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


def _child_env() -> dict:
    env = dict(os.environ)
    package_root = str(Path(deepfake_detector.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_serving_process(backend: str, model_file: Path, export_dir: Path, image_file: Path, images: int,
                        num_threads: int) -> dict:
    """Launch one serving interpreter and return what it measured about itself."""
    env = _child_env()
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


def measure_processes(model_file: Path, export_dir: Path, image_file: Path, images: int, num_threads: int, *,
                      image_size: int = LARGE_JPEG_INPUT_SIZE) -> dict:
    processes = {backend: run_serving_process(backend, model_file, export_dir, image_file, images, num_threads)
                 for backend in MEASURED_BACKENDS}
    return {
        "images_per_process": images,
        "processes": processes,
        "rss_ratio_keras_over_tflite": ratio(processes["keras"]["peak_rss_mib"], processes["tflite"]["peak_rss_mib"]),
        "target": "tflite peak RSS <= one third of keras",
        "large_jpeg": measure_large_jpeg(image_file, image_size),
    }


def measure_large_jpeg(small_image_file: Path, image_size: int) -> dict:
    """Peak extra memory of one 40 MP JPEG (EXIF-rotated) into model input, each path in a fresh interpreter
    (warmed up on the small benchmark JPEG), and each fit's ratio to the full-resolution path."""
    from deepfake_detector.benchmarks.preprocessing import large_jpeg

    width, height = LARGE_JPEG_SIZE
    with tempfile.TemporaryDirectory(prefix="bench-large-") as scratch:
        image_file = Path(scratch) / "camera.jpg"
        image_file.write_bytes(large_jpeg(width, height))
        paths = {path: _large_jpeg_process(image_file, path, image_size, small_image_file)
                 for path in LARGE_JPEG_PATHS}
        file_mib = image_file.stat().st_size / 2**20
    full = paths["full decode + resize"]
    return {"image": f"{width}x{height} JPEG ({file_mib:.1f} MiB, EXIF orientation 6)", "image_size": image_size,
            "peak_extra_mib": paths, "target_mib": LARGE_JPEG_TARGET_MIB,
            "ratio_to_full_decode": {fit: ratio(paths[fit], full) for fit in ("resize", "crop")}}


def _large_jpeg_process(image_file: Path, path: str, image_size: int, warm_file: Path) -> float:
    command = [sys.executable, "-c", LARGE_JPEG_SCRIPT, str(image_file), path, str(image_size), str(warm_file)]
    result = subprocess.run(command, capture_output=True, text=True, env=_child_env(), timeout=TIMEOUT_S)
    if result.returncode != 0:
        raise BenchmarkError(f"measuring the memory of a large JPEG ({path}) failed (exit {result.returncode}):\n"
                             f"{result.stderr.strip()[-2000:]}")
    peak = json.loads(result.stdout.strip().splitlines()[-1])["peak_extra_mib"]
    logger.info("40 MP JPEG into model input, %s: peak extra memory %.0f MiB", path, peak)
    return peak
