"""Face detection and the one face crop: how long BlazeFace plus crop_face take on a 300x300 photo, with the
interpreter threads a gunicorn worker gets (target: 5 ms on 2 cores), and what each detector finds among
pictures every installation has offline: the demo generator's faces, real photographs shipped by scikit-image
and matplotlib, LFW face and non-face patches (scikit-image's lfw_subset), and pictures without a face."""
from __future__ import annotations

import io
import logging
from collections.abc import Callable

import numpy as np
from PIL import Image

from deepfake_detector.benchmarks.settings import BenchSettings
from deepfake_detector.benchmarks.timing import summarize_ms, time_calls

logger = logging.getLogger(__name__)

DETECTORS = ("blazeface", "blazeface_full_range")
TARGET_MS = 5.0
DEMO_SIDE = 300
LFW_SIDE = 128  # lfw_subset's 25 px patches, enlarged to a size a face detector is meant for


def measure_faces(settings: BenchSettings, interpreter_threads: int, image_size: int = 224) -> dict:
    """Per detector: detect + crop p50 per crop way, and found / total per picture set; skipped, saying why,
    when the detector's weights or the sample pictures' packages are missing."""
    from deepfake_detector.contracts.errors import ModelError
    from deepfake_detector.inference.face_detection import DETECTOR_MODELS, FaceDetector

    try:
        sets = picture_sets(settings.face_demo_scenes)
        detectors = {name: FaceDetector(DETECTOR_MODELS[name], num_threads=interpreter_threads)
                     for name in DETECTORS}
    except (ModelError, ImportError) as error:
        logger.warning("Faces not measured: %s", error)
        return {"skipped": str(error)}
    photo = _decoded_demo_jpeg()
    rows = {}
    for name, detector in detectors.items():
        if not detector.detect(photo):
            raise RuntimeError(f"{name} finds no face in the timed demo scene: its timing would be detection only")
        rows[name] = {"timings": {crop: summarize_ms(time_calls(_detect_and_crop(detector, photo, crop, image_size),
                                                                settings.face_reps, settings.warmup))
                                  for crop in ("native", "aligned")},
                      "found": {set_name: _count_found(detector, pictures, expect_face)
                                for set_name, (pictures, expect_face) in sets.items()}}
        logger.info("%s: detect + native crop p50 %.2f ms; %s", name, rows[name]["timings"]["native"]["p50_ms"],
                    ", ".join(f"{set_name} {found['found']}/{found['total']}"
                              for set_name, found in rows[name]["found"].items()))
    return {"detectors": rows, "image": f"{DEMO_SIDE}x{DEMO_SIDE} JPEG (a demo scene)", "target_ms": TARGET_MS,
            "interpreter_threads": interpreter_threads,
            "sets": {set_name: {"pictures": len(pictures), "faces_expected": expect_face}
                     for set_name, (pictures, expect_face) in sets.items()}}


def picture_sets(demo_scenes: int) -> dict[str, tuple[list[np.ndarray], bool]]:
    """{name: (RGB uint8 pictures, whether each holds a face)}."""
    import matplotlib.cbook
    import skimage.data

    from deepfake_detector.components.data.demo_data import DEMO_STYLES, STYLES, draw_scene

    demo = [(draw_scene(np.random.default_rng(seed), DEMO_SIDE, STYLES[style]) * 255).astype(np.uint8)
            for style in DEMO_STYLES for seed in range(demo_scenes)]
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as hopper:
        photos = [skimage.data.astronaut(), skimage.data.camera(), np.asarray(hopper.convert("RGB"))]
    patches = skimage.data.lfw_subset()  # 100 faces, then 100 non-faces
    lfw = [_enlarged(patch, LFW_SIDE) for patch in patches]
    no_face = [loader() for loader in (skimage.data.coffee, skimage.data.chelsea, skimage.data.rocket,
                                       skimage.data.coins, skimage.data.hubble_deep_field,
                                       skimage.data.immunohistochemistry, skimage.data.page, skimage.data.text,
                                       skimage.data.moon, skimage.data.brick, skimage.data.grass,
                                       skimage.data.gravel, skimage.data.clock, skimage.data.logo)]
    return {"demo faces": (demo, True), "photographs of a face": ([_rgb(photo) for photo in photos], True),
            "LFW faces": (lfw[:100], True), "LFW non-faces": (lfw[100:], False),
            "pictures without a face": ([_rgb(picture) for picture in no_face], False)}


def _count_found(detector, pictures: list[np.ndarray], expect_face: bool) -> dict:
    """How many pictures the detector finds a face in, against how many hold one (or none)."""
    found = sum(bool(detector.detect(picture)) for picture in pictures)
    return {"found": found, "total": len(pictures), "expect_face": expect_face}


def _detect_and_crop(detector, image: np.ndarray, crop: str, image_size: int) -> Callable[[], object]:
    from deepfake_detector.inference.face_crop import crop_face

    def call() -> object:
        faces = detector.detect(image)
        return [crop_face(image, face, image_size, mode=crop) for face in faces[:1]]
    return call


def _decoded_demo_jpeg() -> np.ndarray:
    """A demo scene as a server receives it: JPEG-encoded, decoded again."""
    from deepfake_detector.components.data.demo_data import draw_scene

    pixels = (draw_scene(np.random.default_rng(7), DEMO_SIDE) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=92)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _rgb(picture: np.ndarray) -> np.ndarray:
    """uint8 RGB of a gray, boolean or RGBA picture."""
    picture = np.asarray(picture)
    if picture.dtype != np.uint8:
        picture = (picture.astype(np.float64) * (255 if picture.max() <= 1 else 1)).clip(0, 255).astype(np.uint8)
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=-1)
    return np.ascontiguousarray(picture[..., :3])


def _enlarged(patch: np.ndarray, side: int) -> np.ndarray:
    gray = Image.fromarray((patch * 255).clip(0, 255).astype(np.uint8)).resize((side, side), Image.Resampling.BICUBIC)
    return _rgb(np.asarray(gray))
