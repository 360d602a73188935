"""Videos through the API: how long a 10-second 720p clip takes from POST /api/v1/predict to its verdict
(target: 3 s on 2 cores), with faces off and with BlazeFace following the face, and the memory one analysis adds
for that clip and for one six times longer (frames are streamed, so the two should match).

Each measurement runs in a fresh interpreter serving the benchmarked model through the Flask app in-process
(the API's parsing, admission and metrics included; no HTTP socket), so its peak RSS is its own. The clips are
the demo generator's moving faces at 720 px, padded to 1280 x 720 and encoded with H.264 at about 4 Mbit/s, as
a phone or a video site would deliver them.
"""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import deepfake_detector
from deepfake_detector.benchmarks.errors import BenchmarkError
from deepfake_detector.benchmarks.settings import BenchSettings

logger = logging.getLogger(__name__)

TARGET_S = 3.0
WIDTH, HEIGHT, FPS, BITRATE = 1280, 720, 30, 4_000_000
LONG_CLIP_FACTOR = 6
TIMEOUT_S = 600
FACE_SETTINGS = ("off", "blazeface")
# Runs in the child; argv: model file, export dir, face detector, repetitions, clip file. Prints what one analysis
# adds to the RSS of the loaded app with the upload already in memory (VmHWM reset through clear_refs: the
# decoder, the frames, the model inputs), then the wall time of each API request after a warm-up one, and the
# process's peak RSS (the model, the app, and the upload's copies on the client's and the server's side).
PROBE_SCRIPT = """
import dataclasses, json, sys, time
from deepfake_detector.config import ConfigurationManager
from deepfake_detector.serving.app_factory import create_app
from deepfake_detector.serving.service import DetectionService
def status_kib(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key + ":"))
model_file, export_dir, faces, reps, clip = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
manager = ConfigurationManager()
config = dataclasses.replace(manager.get_serving_config(), model_file=model_file, export_dir=export_dir,
                             face_detector=faces, max_request_bytes=512 * 2**20, video_max_duration_s=3600.0,
                             video_max_frames_decoded=10**6, request_deadline_s=600.0)
service = DetectionService.from_config(config, environ={})
client = create_app(config, root=manager.root, environ={}, service=service).test_client()
def post(data):
    response = client.post("/api/v1/predict", data=data, content_type="video/mp4")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_json()["results"][0]
data = open(clip, "rb").read()
service.predictor.warm_up()
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")
before = status_kib("VmRSS")
service.analyze_upload(data, "clip.mp4")
analysis_extra = (status_kib("VmHWM") - before) / 1024.0
post(data)  # warm: the API's own first-request costs
times = []
for _ in range(reps):
    started = time.perf_counter()
    answer = post(data)
    times.append(time.perf_counter() - started)
print(json.dumps({"seconds": times, "peak_rss_mib": status_kib("VmHWM") / 1024.0, "analysis_extra_mib": analysis_extra,
                  "frames": len(answer["frames"]), "frames_with_face": answer["frames_with_face"],
                  "duration_s": answer["video"]["duration_s"], "timings_ms": answer["timings_ms"],
                  "bytes": len(data)}))
"""


def measure_video(model_file: Path, export_dir: Path, scratch: Path, settings: BenchSettings) -> dict:
    """{faces setting: {"short": row, "long": row}} for the clip and the one LONG_CLIP_FACTOR times longer, each
    in a process of its own."""
    seconds = settings.video_seconds
    short_clip, long_clip = Path(scratch) / "clip.mp4", Path(scratch) / "clip_long.mp4"
    write_clip(short_clip, seconds, settings.video_height)
    write_clip(long_clip, seconds * LONG_CLIP_FACTOR, settings.video_height)
    width = round(settings.video_height * WIDTH / HEIGHT / 2) * 2
    rows = {}
    for faces in FACE_SETTINGS:
        short = _probe(model_file, export_dir, faces, settings.video_reps, short_clip)
        long = _probe(model_file, export_dir, faces, 1, long_clip)
        rows[faces] = {"short": short, "long": long}
        logger.info("Video, faces %s: %g s %dp clip p50 %.2f s (%d frames scored, %d with a face), analysis adds "
                    "%.0f MiB (%g s clip: %.0f MiB)", faces, seconds, settings.video_height,
                    float(np.median(short["seconds"])), short["frames"], short["frames_with_face"],
                    short["analysis_extra_mib"], seconds * LONG_CLIP_FACTOR, long["analysis_extra_mib"])
    return {"clip": {"seconds": seconds, "width": width, "height": settings.video_height, "fps": FPS,
                     "bitrate": BITRATE, "codec": "h264"},
            "long_clip_seconds": seconds * LONG_CLIP_FACTOR, "target_s": TARGET_S, "rows": rows}


def write_clip(path: Path, seconds: float, height: int) -> None:
    """A demo clip of moving faces, `seconds` long at FPS, 16:9 at `height`, H.264 at BITRATE: two seconds of the
    generator's clip played forward and back (no cut), each frame padded to 16:9 by mirroring its sides."""
    import av

    from deepfake_detector.components.data.demo_video import render_demo_video
    from deepfake_detector.config.entities import DemoDataConfig
    from deepfake_detector.contracts.labels import FAKE

    side = height - height % 2
    width = round(side * WIDTH / HEIGHT / 2) * 2
    source = render_demo_video(DemoDataConfig(image_size=side), FAKE, 1, seconds=2.0, fps=FPS, size=side,
                               bitrate=BITRATE)
    with av.open(io.BytesIO(source)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    cycle = frames + frames[-2:0:-1]
    pad = (width - side) // 2
    with av.open(str(path), "w", format="mp4") as output:
        stream = output.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, side, "yuv420p"
        stream.bit_rate = BITRATE
        stream.options = {"preset": "veryfast"}
        for number in range(round(seconds * FPS)):
            pixels = np.pad(cycle[number % len(cycle)], ((0, 0), (pad, width - side - pad), (0, 0)), mode="reflect")
            output.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        output.mux(stream.encode())


def _probe(model_file: Path, export_dir: Path, faces: str, reps: int, clip: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(deepfake_detector.__file__).resolve().parents[1])}
    command = [sys.executable, "-c", PROBE_SCRIPT, str(model_file), str(export_dir), faces, str(reps), str(clip)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=env,
                            cwd=Path(deepfake_detector.__file__).resolve().parents[2])
    if result.returncode != 0:
        raise BenchmarkError(f"video probe (faces {faces}) failed: {result.stderr.strip()[-1500:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
