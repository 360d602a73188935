"""The built-in demo dataset: procedural face-like scenes in HardFake's layout, where only a
generator's trace (fake) or camera sensor noise (real) tells the two classes apart.

Each style stands in for one generator family, so a detector trained on one can be scored on the
others (leave-one-generator-out):
- "a" (the default): a stride-2 transposed-convolution checkerboard added to studio portraits;
- "b": stride-3 traces on darker close-ups (another generator and other scenes);
- "nearest", "bilinear", "bicubic": the whole image synthesized at half resolution and enlarged by
  an interpolating up-sampler, which leaves no checkerboard;
- "tconv": synthesized at half resolution and enlarged by a stride-2 transposed convolution with a
  4-tap kernel of its own per image (as every trained generator has its own);
- "blend": a real photograph whose face region is replaced by a re-synthesized face, blended
  under a feathered mask, as face-swap tools do.
The families after b draw the scenes of a (from their own seeds), so only the generator differs,
and half of their fakes get camera noise on top, so that noise alone cannot be the label.
"""
from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from deepfake_detector.config.entities import DemoDataConfig
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, REAL
from deepfake_detector.utils.files import write_text_atomic

logger = logging.getLogger(__name__)

CSV_NAME = "data.csv"

# Base colors (RGB in 0..1); every draw jitters them, so these only anchor the ranges.
SKIN_TONES = np.array([
    (0.96, 0.84, 0.74), (0.92, 0.76, 0.62), (0.85, 0.66, 0.50), (0.76, 0.56, 0.40),
    (0.62, 0.43, 0.30), (0.47, 0.31, 0.21), (0.34, 0.22, 0.15),
])
HAIR_COLORS = np.array([
    (0.06, 0.05, 0.05), (0.20, 0.13, 0.08), (0.38, 0.24, 0.13), (0.72, 0.58, 0.35),
    (0.55, 0.22, 0.10), (0.62, 0.62, 0.62), (0.88, 0.80, 0.62),
])
IRIS_COLORS = np.array([(0.30, 0.18, 0.08), (0.20, 0.35, 0.55), (0.25, 0.40, 0.25), (0.40, 0.42, 0.45)])
# Style b grades skin pinker or more olive and has dyed hair among its colors.
SKIN_TONES_B = np.array([
    (0.98, 0.80, 0.76), (0.90, 0.70, 0.64), (0.80, 0.64, 0.46), (0.70, 0.56, 0.36),
    (0.56, 0.40, 0.32), (0.40, 0.27, 0.24),
])
HAIR_COLORS_B = np.array([
    (0.02, 0.02, 0.03), (0.30, 0.16, 0.10), (0.85, 0.70, 0.40), (0.45, 0.10, 0.08),
    (0.90, 0.90, 0.92), (0.18, 0.12, 0.30),
])


@dataclass(frozen=True, eq=False)  # eq=False: the palettes are arrays, which == cannot compare
class DemoStyle:
    """What one style draws from: its scenes' statistics, its fakes' up-sampling stride and its
    reals' noise. Every range is a (low, high) pair for a uniform draw."""

    stream: tuple[int, ...]  # appended to each image's seed, so styles draw unrelated scenes
    upsampling_stride: int  # 2: checkerboard at half the sampling rate; 3: peaks at a third of it
    skin_tones: np.ndarray
    hair_colors: np.ndarray
    background: tuple[float, float]  # each RGB channel of the background gradient's two colors
    head_half_width: tuple[float, float]  # as a fraction of the image size
    head_aspect: tuple[float, float]  # half height over half width
    lens_blur: tuple[float, float]
    exposure: tuple[float, float]
    light_slope: tuple[float, float]  # how strongly the light falls off across the image
    vignette: tuple[float, float]
    noise_scale: float  # times data.demo.sensor_noise, for the real class
    demosaic_blur: tuple[float, float]
    fakes: str = "checkerboard"  # which FAKE_MAKERS entry turns a scene into a fake
    noisy_fake_share: float = 0.0  # share of fakes that get camera noise after the generator


STYLES = {
    # Style a keeps an empty stream and the original ranges: its images predate styles and must
    # stay byte-identical.
    "a": DemoStyle(stream=(), upsampling_stride=2, skin_tones=SKIN_TONES, hair_colors=HAIR_COLORS,
                   background=(0.08, 0.92), head_half_width=(0.13, 0.23), head_aspect=(1.18, 1.42),
                   lens_blur=(0.3, 0.9), exposure=(0.8, 1.1), light_slope=(0.05, 0.3), vignette=(0.0, 0.2),
                   noise_scale=1.0, demosaic_blur=(0.3, 0.6)),
    # Style b: low-key close-ups (dark backgrounds, bigger rounder heads, harder side light, a
    # stronger vignette), sharper lenses, and reals from a cleaner, more heavily demosaiced sensor.
    "b": DemoStyle(stream=(ord("b"),), upsampling_stride=3, skin_tones=SKIN_TONES_B,
                   hair_colors=HAIR_COLORS_B, background=(0.02, 0.5), head_half_width=(0.2, 0.3),
                   head_aspect=(1.05, 1.25), lens_blur=(0.1, 0.5), exposure=(0.75, 1.05),
                   light_slope=(0.25, 0.6), vignette=(0.15, 0.45), noise_scale=0.6,
                   demosaic_blur=(0.5, 0.8)),
}
# Unseen-generator families: style a's scenes and reals, other fakes. Their streams keep every
# family's images unrelated to a's, so no scene of the training set reappears among them.
for _name in ("nearest", "bilinear", "bicubic", "tconv", "blend"):
    STYLES[_name] = replace(STYLES["a"], stream=tuple(ord(c) for c in _name), fakes=_name, noisy_fake_share=0.5)
DEMO_STYLES = tuple(STYLES)


def demo_style(name: str) -> DemoStyle:
    """The style data.demo.style names (any case); ValueError listing the known ones otherwise."""
    style = STYLES.get(str(name).strip().lower())
    if style is None:
        raise ValueError(f"data.demo.style {name!r} is not a demo style; known styles: {', '.join(DEMO_STYLES)}")
    return style


def generate_demo_dataset(config: DemoDataConfig, target_dir: Path) -> dict[str, int]:
    """Write images_per_class fake and real JPEGs plus data.csv into target_dir.

    Byte-identical for the same config: every image draws from its own generator seeded by
    (seed, class, index, style), so no image depends on another. Both classes come from the same scene
    generator with the same distributions, JPEG qualities included, so content cannot tell them
    apart. Returns the number of images written per class name.
    """
    style = demo_style(config.style)
    target_dir = Path(target_dir)
    jobs = [(label, index) for label in (FAKE, REAL) for index in range(1, config.images_per_class + 1)]
    for label in (FAKE, REAL):
        (target_dir / CLASS_NAMES[label]).mkdir(parents=True, exist_ok=True)
    rows = ["images_id,label"]
    for label, index in tqdm(jobs, desc="demo images", unit="img", leave=False):
        image_id = f"{CLASS_NAMES[label]}_{index}"
        (target_dir / CLASS_NAMES[label] / f"{image_id}.jpg").write_bytes(
            render_demo_image(config, label, index, style))
        rows.append(f"{image_id},{CLASS_NAMES[label]}")
    write_text_atomic(target_dir / CSV_NAME, "\n".join(rows) + "\n")
    counts = {CLASS_NAMES[label]: config.images_per_class for label in (FAKE, REAL)}
    logger.info("Demo dataset (style %s): %d fake and %d real %dx%d JPEGs in %s", config.style, counts["fake"],
                counts["real"], config.image_size, config.image_size, target_dir)
    return counts


def render_demo_image(config: DemoDataConfig, label: int, index: int, style: DemoStyle | None = None) -> bytes:
    """One demo image as JPEG bytes; a pure function of (config, label, index).

    style, when given, must be config.style's (it saves looking it up once per image)."""
    style = style or demo_style(config.style)
    rng = np.random.default_rng([config.seed, label, index, *style.stream])
    scene, head = draw_scene_and_head(rng, config.image_size, style)
    quality = int(rng.integers(config.jpeg_quality_min, config.jpeg_quality_max, endpoint=True))
    noise_level = config.sensor_noise * style.noise_scale
    if label == FAKE:
        pixels = FAKE_MAKERS[style.fakes](FakeInputs(scene, head, rng, config, style))
        if style.noisy_fake_share > 0 and rng.random() < style.noisy_fake_share:
            pixels = add_sensor_noise(pixels, rng, noise_level, style.demosaic_blur)
    else:
        pixels = add_sensor_noise(scene, rng, noise_level, style.demosaic_blur)
    image = Image.fromarray(_to_uint8(pixels), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def add_upsampling_fingerprint(scene: np.ndarray, strength: float, stride: int = 2) -> np.ndarray:
    """Add the periodic residual a stride-2 transposed convolution leaves on its output.

    A transposed convolution with a 3-tap kernel [a, b, a] writes b * x to even output pixels
    and a * (x_left + x_right) to odd ones; only when b == 2a (bilinear) do both get the same
    gain. Here b = 1 + strength and 2a = 1 - strength, so the output is the ideal up-sampling
    times a gain that alternates by 1 +- strength along each axis: the checkerboard, with
    spectral peaks at half the sampling rate, that GAN detectors key on. It is added as a
    residual to the full-resolution scene (up-sampling of the half-resolution scene with the
    skewed kernel minus that with the ideal one), so the fake class keeps the scene's content
    and sharpness and differs from the real one by this pattern, not by blur.

    At 300 px the pattern still shows after JPEG and the pipeline's antialiased resize to
    224 px: half the sampling rate (150 cycles per image) folds to 74 cycles at 224 px.

    stride 3 (x3 up-sampling decoders) gives the same kind of residual with a period of three
    pixels, peaks at a third of the sampling rate (100 cycles at 300 px, below 224 px' Nyquist
    limit, so they survive the resize unfolded) and none at half of it.
    """
    if stride not in UPSAMPLERS:
        raise ValueError(f"up-sampling stride must be one of {sorted(UPSAMPLERS)}, got {stride}")
    height, width = scene.shape[:2]
    low = _downsample(scene, stride)
    upsample = UPSAMPLERS[stride]
    residual = upsample(low, strength) - upsample(low, 0.0)
    return scene + residual[:height, :width]


def add_sensor_noise(scene: np.ndarray, rng: np.random.Generator, level: float,
                     demosaic_blur: tuple[float, float] = (0.3, 0.6)) -> np.ndarray:
    """Camera-like noise: signal-dependent (shot plus read) noise on the raw values, then the
    mild blur a demosaicing interpolation leaves, which correlates the noise of neighbours.

    level is the standard deviation at full white for an average sensitivity; darker pixels get
    less (down to half), and each image draws its own sensitivity (0.6 to 1.4 times level).
    """
    iso_gain = rng.uniform(0.6, 1.4)  # images were "shot" at different sensitivities
    std = level * iso_gain * np.sqrt(0.25 + 0.75 * np.clip(scene, 0.0, 1.0))
    noisy = scene + std * rng.standard_normal(scene.shape, dtype=np.float32)
    return _binomial_blur(noisy, weight=rng.uniform(*demosaic_blur))


@dataclass(frozen=True, eq=False)
class FakeInputs:
    """What a fake maker may use: the clean scene, where its head is, the image's generator (drawn
    from after the scene and the JPEG quality) and the dataset's config and style."""

    scene: np.ndarray
    head: Head
    rng: np.random.Generator
    config: DemoDataConfig
    style: DemoStyle


def checkerboard_fake(inputs: FakeInputs) -> np.ndarray:
    """Styles a and b: the scene plus a transposed convolution's periodic residual."""
    return add_upsampling_fingerprint(inputs.scene, inputs.config.fingerprint_strength,
                                      inputs.style.upsampling_stride)


def interpolated_fake(method: Image.Resampling) -> Callable[[FakeInputs], np.ndarray]:
    """The whole image synthesized at half resolution, then enlarged with `method`: the content
    above the half-resolution Nyquist limit is missing (bilinear, bicubic) or aliased into 2x2
    blocks (nearest), and no periodic gain pattern is left."""
    def make(inputs: FakeInputs) -> np.ndarray:
        return upsample_image(_downsample(inputs.scene, 2), inputs.scene.shape[:2], method)
    return make


def transposed_conv_fake(inputs: FakeInputs) -> np.ndarray:
    """Synthesized at half resolution and enlarged by a stride-2 transposed convolution whose
    4-tap kernel is drawn per image: half-pixel-offset linear interpolation ([1, 3, 3, 1] / 4)
    plus a random perturbation, with phase gains 1 + g and 1 - g (|g| in 1-4 %)."""
    rng = inputs.rng
    gain = rng.uniform(0.01, 0.04) * rng.choice([-1.0, 1.0])
    even = np.array([0.25, 0.75]) + rng.normal(0.0, 0.05, size=2)
    odd = np.array([0.75, 0.25]) + rng.normal(0.0, 0.05, size=2)
    even = even / even.sum() * (1.0 + gain)
    odd = odd / odd.sum() * (1.0 - gain)
    pixels = _downsample(inputs.scene, 2)
    for axis in (0, 1):
        source = np.moveaxis(pixels, axis, 0)
        previous = np.concatenate([source[:1], source[:-1]])
        following = np.concatenate([source[1:], source[-1:]])
        output = np.empty((2 * len(source), *source.shape[1:]), dtype=np.float32)
        output[0::2] = even[0] * previous + even[1] * source
        output[1::2] = odd[0] * source + odd[1] * following
        pixels = np.moveaxis(output, 0, axis)
    height, width = inputs.scene.shape[:2]
    return pixels[:height, :width]


def blended_face_fake(inputs: FakeInputs) -> np.ndarray:
    """A real photograph (scene plus camera noise) whose face is replaced by a re-synthesized one:
    the face box rendered at a generator's lower resolution (35-70 % of its size), enlarged back
    bilinearly, color-shifted a little and blended in under a feathered ellipse, as face-swap
    tools paste their output."""
    rng, head, scene = inputs.rng, inputs.head, inputs.scene
    noise_level = inputs.config.sensor_noise * inputs.style.noise_scale
    photo = add_sensor_noise(scene, rng, noise_level, inputs.style.demosaic_blur)
    size = scene.shape[0]
    top, bottom = int(max(0, head.cy - 1.1 * head.half_h)), int(min(size, head.cy + 1.1 * head.half_h))
    left, right = int(max(0, head.cx - 1.1 * head.half_w)), int(min(size, head.cx + 1.1 * head.half_w))
    box = scene[top:bottom, left:right]
    scale = rng.uniform(0.35, 0.7)
    low_shape = (max(2, round(box.shape[0] * scale)), max(2, round(box.shape[1] * scale)))
    low = np.asarray(Image.fromarray(_to_uint8(box), "RGB").resize(low_shape[::-1], Image.Resampling.BOX),
                     dtype=np.float32) / 255.0
    face = upsample_image(low, box.shape[:2], Image.Resampling.BILINEAR)
    face = np.clip(face * (1.0 + rng.uniform(-0.03, 0.03, size=3)).astype(np.float32), 0.0, 1.0)
    mask = feathered_ellipse(size, head, feather=rng.uniform(0.05, 0.15))[top:bottom, left:right, None]
    blended = photo.copy()
    blended[top:bottom, left:right] = mask * face + (1.0 - mask) * photo[top:bottom, left:right]
    return blended


def upsample_image(pixels: np.ndarray, shape: tuple[int, int], method: Image.Resampling) -> np.ndarray:
    """Float RGB in [0, 1] enlarged to shape (height, width) with one of Pillow's filters, per
    channel in float so that no 8-bit rounding hides the filter's trace."""
    height, width = shape
    channels = [Image.fromarray(np.ascontiguousarray(pixels[:, :, c]), "F").resize((width, height), method)
                for c in range(pixels.shape[2])]
    return np.stack([np.asarray(channel) for channel in channels], axis=-1).astype(np.float32)


def feathered_ellipse(size: int, head: Head, feather: float) -> np.ndarray:
    """1 inside the head's (tilted) ellipse, 0 outside, with a soft edge `feather` of its size wide."""
    coords = np.arange(size, dtype=np.float32)
    dx, dy = coords[None, :] - head.cx, coords[:, None] - head.cy
    angle = math.radians(head.tilt)  # Pillow rotates counter-clockwise on screen
    u = dx * math.cos(angle) - dy * math.sin(angle)
    v = dx * math.sin(angle) + dy * math.cos(angle)
    radius = np.sqrt((u / head.half_w) ** 2 + (v / head.half_h) ** 2)
    return np.clip((1.0 - radius) / feather + 0.5, 0.0, 1.0).astype(np.float32)


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)


FAKE_MAKERS: dict[str, Callable[[FakeInputs], np.ndarray]] = {
    "checkerboard": checkerboard_fake,
    "nearest": interpolated_fake(Image.Resampling.NEAREST),
    "bilinear": interpolated_fake(Image.Resampling.BILINEAR),
    "bicubic": interpolated_fake(Image.Resampling.BICUBIC),
    "tconv": transposed_conv_fake,
    "blend": blended_face_fake,
}


@dataclass(frozen=True)
class Head:
    """Where a scene's head is: center, half axes and tilt (degrees), in pixels of the scene."""

    cx: float
    cy: float
    half_w: float
    half_h: float
    tilt: float


def draw_scene(rng: np.random.Generator, size: int, style: DemoStyle = STYLES["a"]) -> np.ndarray:
    """A head-and-shoulders scene (float32 RGB in [0, 1]) drawn from rng and style alone, class-blind."""
    return draw_scene_and_head(rng, size, style)[0]


def draw_scene_and_head(rng: np.random.Generator, size: int, style: DemoStyle = STYLES["a"]
                        ) -> tuple[np.ndarray, Head]:
    """draw_scene, plus where the head is (for the face-region blend)."""
    background = _draw_background(rng, size, style).convert("RGBA")
    person, head = _draw_person(rng, size, style)
    image = Image.alpha_composite(background, person).convert("RGB")
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    pixels = _binomial_blur(pixels, weight=rng.uniform(*style.lens_blur))  # lens softness
    pixels = pixels * _lighting(rng, size, style)[:, :, None]
    white_balance = 1.0 + rng.uniform(-0.06, 0.06, size=3).astype(np.float32)
    pixels = np.clip(pixels * white_balance * rng.uniform(*style.exposure), 0.0, 1.0).astype(np.float32)
    return pixels, head


def _color(base: np.ndarray, rng: np.random.Generator, jitter: float = 0.05) -> tuple[int, int, int]:
    rgb = np.clip(base + rng.uniform(-jitter, jitter, size=3), 0.0, 1.0)
    return tuple(int(round(c * 255)) for c in rgb)


def _shade(color: tuple[int, ...], factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, round(c * factor)))) for c in color[:3])


def _draw_background(rng: np.random.Generator, size: int, style: DemoStyle) -> Image.Image:
    """A two-color gradient at a random angle, a soft color field and a few out-of-focus shapes
    (a wall, a window, a lamp), so that backgrounds differ in their low frequencies.

    Drawn at a quarter of the size and enlarged: it is defocused anyway, and this is the cheap
    way to blur it."""
    small = max(8, size // 4)
    angle = rng.uniform(0, 2 * math.pi)
    first, second = rng.uniform(*style.background, size=(2, 3)).astype(np.float32)
    coords = np.linspace(-1.0, 1.0, small, dtype=np.float32)
    ramp = (coords[None, :] * math.cos(angle) + coords[:, None] * math.sin(angle)) * 0.5 + 0.5
    pixels = first * (1 - ramp[:, :, None]) + second * ramp[:, :, None]
    field = Image.fromarray(rng.integers(90, 166, size=(4, 4, 3), dtype=np.uint8), "RGB")
    field = field.resize((small, small), Image.Resampling.BICUBIC)
    pixels = pixels + np.asarray(field, dtype=np.float32) / 255.0 - 0.5
    image = Image.fromarray(np.clip(pixels * 255, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(2, 7)):
        x0, y0 = rng.uniform(-0.2, 1.0, size=2) * small
        x1, y1 = x0 + rng.uniform(0.1, 0.7) * small, y0 + rng.uniform(0.1, 0.7) * small
        fill = _color(rng.uniform(0.05, 0.95, size=3), rng)
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
    image = image.filter(ImageFilter.BoxBlur(rng.uniform(0.0, 2.0)))
    return image.resize((size, size), Image.Resampling.BICUBIC)


def _draw_person(rng: np.random.Generator, size: int, style: DemoStyle) -> tuple[Image.Image, Head]:
    """Shoulders, neck, hair, head, ears and a face on a transparent layer, tilted at random."""
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    half_w = size * rng.uniform(*style.head_half_width)
    half_h = half_w * rng.uniform(*style.head_aspect)
    cx, cy = size * rng.uniform(0.32, 0.68), size * rng.uniform(0.34, 0.6)
    skin = _color(style.skin_tones[rng.integers(len(style.skin_tones))], rng, 0.04)
    hair = _color(style.hair_colors[rng.integers(len(style.hair_colors))], rng, 0.05)
    turn = rng.uniform(-0.15, 0.15) * half_w  # a head turned sideways shifts its features

    # Shoulders and clothes, then the neck.
    body_w = half_w * rng.uniform(2.2, 3.6)
    body_top = cy + half_h * rng.uniform(1.05, 1.3)
    clothes = _color(rng.uniform(0.05, 0.95, size=3), rng)
    draw.ellipse((cx - body_w, body_top, cx + body_w, body_top + 2.2 * body_w), fill=clothes)
    if rng.random() < 0.4:  # a collar or a neckline
        draw.polygon([(cx - half_w * 0.5, body_top), (cx + half_w * 0.5, body_top),
                      (cx, body_top + half_h * rng.uniform(0.3, 0.7))],
                     fill=_color(rng.uniform(0.05, 0.95, size=3), rng))
    neck_w = half_w * rng.uniform(0.45, 0.62)
    draw.rectangle((cx - neck_w, cy + half_h * 0.5, cx + neck_w, body_top + half_h * 0.2),
                   fill=_shade(skin, 0.85))

    style = rng.choice(["bald", "short", "long", "long", "bun", "curly"])
    if style == "long":
        length = half_h * rng.uniform(1.1, 2.0)
        draw.rounded_rectangle((cx - half_w * 1.25, cy - half_h * 1.08, cx + half_w * 1.25, cy + length),
                               radius=half_w * 0.6, fill=hair)
    # Ears, then the head over them.
    ear_y = cy + half_h * rng.uniform(-0.1, 0.1)
    for side in (-1, 1):
        ex = cx + side * half_w * 0.97 + turn * 0.3
        draw.ellipse((ex - half_w * 0.14, ear_y - half_h * 0.2, ex + half_w * 0.14, ear_y + half_h * 0.2),
                     fill=_shade(skin, 0.9))
    draw.ellipse((cx - half_w, cy - half_h, cx + half_w, cy + half_h), fill=skin)
    jaw = rng.uniform(0.0, 0.25)  # a wider jaw: a flattened lower ellipse over the chin
    if jaw > 0.05:
        draw.ellipse((cx - half_w * (1 - jaw * 0.3), cy - half_h * 0.2, cx + half_w * (1 - jaw * 0.3),
                      cy + half_h * (1 - jaw * 0.2)), fill=skin)

    if style in ("short", "long", "bun", "curly"):
        top = cy - half_h * rng.uniform(1.05, 1.2)
        hairline = cy - half_h * rng.uniform(0.35, 0.6)
        draw.chord((cx - half_w * 1.06, top, cx + half_w * 1.06, 2 * hairline - top),
                   start=180, end=360, fill=hair)
        if rng.random() < 0.5:  # a fringe to one side
            side = rng.choice([-1, 1])
            draw.pieslice((cx - half_w * 1.05, top, cx + half_w * 1.05, hairline + half_h * 0.5),
                          start=180 + (0 if side < 0 else 60), end=300 + (0 if side < 0 else 60), fill=hair)
    if style == "bun":
        radius = half_w * rng.uniform(0.35, 0.55)
        draw.ellipse((cx - radius, cy - half_h * 1.1 - 1.6 * radius, cx + radius, cy - half_h * 1.1 + 0.2 * radius),
                     fill=hair)
    if style == "curly":
        for _ in range(rng.integers(8, 16)):
            angle = rng.uniform(math.pi * 1.05, math.pi * 1.95)
            radius = half_w * rng.uniform(0.2, 0.35)
            px, py = cx + math.cos(angle) * half_w * 1.0, cy + math.sin(angle) * half_h * 0.95
            draw.ellipse((px - radius, py - radius, px + radius, py + radius),
                         fill=_shade(hair, rng.uniform(0.85, 1.1)))

    _draw_face(draw, rng, cx + turn, cy, half_w, half_h, skin, hair)
    tilt = rng.uniform(-14, 14)
    head = Head(cx=float(cx), cy=float(cy), half_w=float(half_w), half_h=float(half_h), tilt=float(tilt))
    return layer.rotate(tilt, resample=Image.Resampling.BILINEAR, center=(cx, cy)), head


def _draw_face(draw: ImageDraw.ImageDraw, rng: np.random.Generator, cx: float, cy: float,
               half_w: float, half_h: float, skin: tuple[int, ...], hair: tuple[int, ...]) -> None:
    eye_y = cy + half_h * rng.uniform(-0.15, 0.02)
    eye_dx = half_w * rng.uniform(0.34, 0.46)
    eye_rx = half_w * rng.uniform(0.14, 0.22)
    eye_ry = eye_rx * rng.uniform(0.4, 0.65)
    iris = _color(IRIS_COLORS[rng.integers(len(IRIS_COLORS))], rng)
    gaze = rng.uniform(-0.35, 0.35, size=2) * (eye_rx * 0.5, eye_ry * 0.3)
    brow = _shade(hair, rng.uniform(0.7, 1.0))
    brow_gap = half_h * rng.uniform(0.08, 0.16)
    brow_width = max(1, int(half_w * rng.uniform(0.05, 0.1)))
    for side in (-1, 1):
        ex = cx + side * eye_dx
        draw.ellipse((ex - eye_rx, eye_y - eye_ry, ex + eye_rx, eye_y + eye_ry), fill=(240, 236, 230))
        radius = eye_ry * rng.uniform(0.75, 0.95)
        ix, iy = ex + gaze[0], eye_y + gaze[1]
        draw.ellipse((ix - radius, iy - radius, ix + radius, iy + radius), fill=iris)
        draw.ellipse((ix - radius * 0.45, iy - radius * 0.45, ix + radius * 0.45, iy + radius * 0.45),
                     fill=(15, 12, 12))
        lift = rng.uniform(-0.3, 0.3) * brow_gap
        draw.line([(ex - eye_rx * 1.1, eye_y - eye_ry - brow_gap + lift),
                   (ex, eye_y - eye_ry - brow_gap * 1.3),
                   (ex + eye_rx * 1.1, eye_y - eye_ry - brow_gap - lift * side)],
                  fill=brow, width=brow_width, joint="curve")
    if rng.random() < 0.2:  # glasses
        frame = _color(rng.uniform(0.0, 0.5, size=3), rng)
        width = max(1, int(half_w * 0.05))
        for side in (-1, 1):
            ex = cx + side * eye_dx
            draw.ellipse((ex - eye_rx * 1.5, eye_y - eye_ry * 2.2, ex + eye_rx * 1.5, eye_y + eye_ry * 2.2),
                         outline=frame, width=width)
        draw.line([(cx - eye_dx + eye_rx * 1.5, eye_y), (cx + eye_dx - eye_rx * 1.5, eye_y)], fill=frame,
                  width=width)

    nose_y = cy + half_h * rng.uniform(0.18, 0.32)
    nose_w = half_w * rng.uniform(0.12, 0.22)
    shadow = _shade(skin, rng.uniform(0.72, 0.85))
    draw.line([(cx + nose_w * 0.3, eye_y + eye_ry), (cx + nose_w * 0.5, nose_y)], fill=shadow,
              width=max(1, int(half_w * 0.04)))
    for side in (-1, 1):
        nx = cx + side * nose_w * 0.55
        draw.ellipse((nx - nose_w * 0.3, nose_y - nose_w * 0.18, nx + nose_w * 0.3, nose_y + nose_w * 0.18),
                     fill=shadow)

    mouth_y = cy + half_h * rng.uniform(0.45, 0.62)
    mouth_w = half_w * rng.uniform(0.28, 0.45)
    lips = _color(np.array(skin[:3]) / 255 * np.array([0.95, 0.62, 0.62]), rng, 0.04)
    expression = rng.choice(["closed", "smile", "open"])
    if expression == "closed":
        draw.ellipse((cx - mouth_w, mouth_y - mouth_w * 0.18, cx + mouth_w, mouth_y + mouth_w * 0.18), fill=lips)
        draw.line([(cx - mouth_w, mouth_y), (cx + mouth_w, mouth_y)], fill=_shade(lips, 0.6),
                  width=max(1, int(half_w * 0.03)))
    elif expression == "smile":
        draw.chord((cx - mouth_w, mouth_y - mouth_w * 0.5, cx + mouth_w, mouth_y + mouth_w * 0.5),
                   start=0, end=180, fill=(250, 246, 240), outline=lips, width=max(1, int(half_w * 0.06)))
    else:
        draw.ellipse((cx - mouth_w * 0.7, mouth_y - mouth_w * 0.35, cx + mouth_w * 0.7, mouth_y + mouth_w * 0.35),
                     fill=(70, 25, 30), outline=lips, width=max(1, int(half_w * 0.07)))
    if rng.random() < 0.2:  # a beard
        cover = rng.uniform(0.55, 0.95)  # stubble to full beard; ImageDraw cannot blend, so mix here
        beard = tuple(int(round(cover * h + (1 - cover) * k)) for h, k in zip(hair, skin, strict=False))
        draw.chord((cx - half_w * 0.95, cy - half_h * 0.4, cx + half_w * 0.95, cy + half_h * 1.02),
                   start=20, end=160, fill=beard)


def _lighting(rng: np.random.Generator, size: int, style: DemoStyle) -> np.ndarray:
    """A directional ramp times a vignette: light from a random side at a random strength."""
    coords = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = coords[None, :] * math.cos(angle) + coords[:, None] * math.sin(angle)
    radius2 = coords[None, :] ** 2 + coords[:, None] ** 2
    return (1.0 + rng.uniform(*style.light_slope) * ramp) * (1.0 - rng.uniform(*style.vignette) * radius2 / 2)


def _downsample(pixels: np.ndarray, factor: int) -> np.ndarray:
    """factor x factor box average (edge rows and columns repeated when a side does not divide)."""
    height, width = pixels.shape[:2]
    padded = np.pad(pixels, ((0, -height % factor), (0, -width % factor), (0, 0)), mode="edge")
    total = padded[0::factor, 0::factor]
    for column in range(factor):
        for row in range(factor):
            if row or column:
                total = total + padded[row::factor, column::factor]
    return (1.0 / factor ** 2) * total


def _transposed_conv_2x(pixels: np.ndarray, strength: float) -> np.ndarray:
    """Stride-2 transposed convolution with the separable kernel [a, b, a], b = 1 + strength,
    a = (1 - strength) / 2; strength 0 is exact linear interpolation."""
    center, side = np.float32(1.0 + strength), np.float32((1.0 - strength) / 2.0)
    for axis in (0, 1):
        source = np.moveaxis(pixels, axis, 0)
        following = np.concatenate([source[1:], source[-1:]])  # the last input pixel repeated
        output = np.empty((2 * len(source), *source.shape[1:]), dtype=np.float32)
        output[0::2] = center * source
        output[1::2] = side * (source + following)
        pixels = np.moveaxis(output, 0, axis)
    return pixels


def _transposed_conv_3x(pixels: np.ndarray, strength: float) -> np.ndarray:
    """Stride-3 transposed convolution with the separable kernel [c, d, e, d, c]: strength 0 is
    linear interpolation ([1/3, 2/3, 1, 2/3, 1/3]); otherwise the pixel on the input grid gets
    gain 1 + strength and the two between get 1 - strength / 2, a 3-periodic gain of mean 1."""
    center, between = np.float32(1.0 + strength), np.float32(1.0 - strength / 2.0)
    near, far = between * np.float32(2.0 / 3.0), between * np.float32(1.0 / 3.0)
    for axis in (0, 1):
        source = np.moveaxis(pixels, axis, 0)
        following = np.concatenate([source[1:], source[-1:]])  # the last input pixel repeated
        output = np.empty((3 * len(source), *source.shape[1:]), dtype=np.float32)
        output[0::3] = center * source
        output[1::3] = near * source + far * following
        output[2::3] = far * source + near * following
        pixels = np.moveaxis(output, 0, axis)
    return pixels


UPSAMPLERS = {2: _transposed_conv_2x, 3: _transposed_conv_3x}


def _binomial_blur(pixels: np.ndarray, weight: float) -> np.ndarray:
    """Mix each pixel with its [1, 2, 1] / 4 neighbourhood along both axes (edges repeated)."""
    side = np.float32(0.25 * weight)
    for axis in (0, 1):
        source = np.moveaxis(pixels, axis, 0)
        blurred = source * np.float32(1 - 0.5 * weight)
        blurred[1:] += side * source[:-1]
        blurred[0] += side * source[0]
        blurred[:-1] += side * source[1:]
        blurred[-1] += side * source[-1]
        pixels = np.moveaxis(blurred, 0, axis)
    return pixels
