"""params.yaml as typed models, one per section: the single definition of every knob.

Validation, defaults, the descriptions editors show (params.schema.json is generated from these)
and the frozen entities (config/entities.py subclasses these models) all come from here. To add a
parameter, add a field here and its value to params.yaml; the stage's entity then carries it.

Defaults are the shipped values, except where an entity built in code has always defaulted to
"off" (evaluate.seed, .bootstrap, .calibrate). Every key must still be written in params.yaml:
DVC tracks what a stage reads there.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import field
from typing import Annotated, Any, Literal, Self

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, model_validator, with_config
from pydantic.dataclasses import dataclass
from typing_extensions import TypedDict

from deepfake_detector.config.fields import (
    MEGABYTE,
    MODEL_CONFIG,
    Expect,
    Flag,
    Fraction,
    Integer,
    Megabytes,
    NotBoolean,
    Number,
    Problem,
    Seed,
    Text,
    distinct,
    yaml_words,
)
from deepfake_detector.contracts.export_layout import BACKENDS, TFLITE_VARIANTS, VARIANT_FILES
from deepfake_detector.contracts.faces import FACE_CROPS, FACE_DETECTORS, FACE_FALLBACKS, SERVED_FACE_DETECTORS
from deepfake_detector.contracts.video_aggregation import SERVED_AGGREGATIONS
from deepfake_detector.utils.redaction import displayable_source

ExportVariant = Literal[tuple(VARIANT_FILES)]  # type: ignore[valid-type]
ServedVariant = Literal[TFLITE_VARIANTS]  # type: ignore[valid-type]
Backend = Literal[BACKENDS]  # type: ignore[valid-type]
# components/data/demo_data.py draws them (a test keeps the two in step)
DemoStyle = Literal["a", "b", "nearest", "bilinear", "bicubic", "tconv", "blend"]
MOBILENET_WIDTHS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
EXTRA_SET_NAME = r"^[A-Za-z0-9_.-]+$"


def _check_jpeg_range(low: int, high: int) -> None:
    if low > high:
        raise Problem(f"jpeg_quality_min ({low}) must not exceed jpeg_quality_max ({high})")


# ---- data -----------------------------------------------------------------------------------------

Names = Annotated[tuple[Annotated[Text, StringConstraints(pattern=r"\S")], ...], MinLen(1),
                  AfterValidator(lambda names: tuple(name.lower() for name in names)),
                  Expect("a non-empty list of names")]


@with_config(MODEL_CONFIG)
class ClassNames(TypedDict):
    """Folder or data.csv labels of each class, matched case-insensitively."""

    fake: Annotated[Names, Field(description="labels of the fake class (fake = 1 = positive)")]
    real: Annotated[Names, Field(description="labels of the real class")]


def _disjoint(names: ClassNames) -> ClassNames:
    shared = set(names["fake"]) & set(names["real"])
    if shared:
        raise Problem(f"{sorted(shared)} listed as both fake and real")
    return names


@dataclass(frozen=True, config=MODEL_CONFIG)
class DemoParams:
    """data.demo: the built-in synthetic face dataset, deterministic from its seed."""

    seed: Annotated[Seed, Field(description="seed of every drawn image")] = 42
    images_per_class: Annotated[Integer, Ge(2), Field(description="images drawn of each class")] = 400
    image_size: Annotated[Integer, Ge(32), Le(2048), Field(description="side of each image, in pixels")] = 300
    fingerprint_strength: Annotated[Number, Ge(0), Le(1), Field(
        description="fake class: stride-2 up-sampling checkerboard, gain 1 ± strength")] = 0.06
    sensor_noise: Annotated[Number, Ge(0), Le(1), Field(
        description="real class: camera noise std at full white (0..1), 0.6-1.4x per image")] = 0.02
    jpeg_quality_min: Annotated[Integer, Ge(1), Le(100), Field(description="lowest JPEG quality an image is saved at")
                                ] = 75
    jpeg_quality_max: Annotated[Integer, Ge(1), Le(100), Field(description="highest JPEG quality")] = 95
    style: Annotated[DemoStyle, Field(
        description="a: checkerboard fakes, studio scenes; b: another fingerprint family and scenes")] = "a"
    videos_per_class: Annotated[Integer, Ge(3), Field(
        description="data.source demo-video: clips of each class (each moving and turning; the class's trace on "
                    "every frame; H.264)")] = 60
    video_seconds: Annotated[Number, Gt(0), Le(60), Field(description="demo-video: each clip's length")] = 2.0

    @model_validator(mode="after")
    def _jpeg_range(self) -> Self:
        _check_jpeg_range(self.jpeg_quality_min, self.jpeg_quality_max)
        return self


@dataclass(frozen=True, config=MODEL_CONFIG)
class FacesParams:
    """data.faces: train and evaluate on face crops (the faces stage), cut by the function serving crops with."""

    enabled: Annotated[Flag, Field(
        description="train, evaluate and export on the faces stage's crops instead of whole images; serve "
                    "the model with serve.face_detector on (auto does it)")] = False
    detector: Annotated[Literal[*FACE_DETECTORS[1:]], Field(
        description="blazeface (faces filling much of the picture) or blazeface_full_range (small faces)")
                        ] = "blazeface"
    crop: Annotated[Literal[*FACE_CROPS], Field(
        description="native: a square around the face at the image's own resolution; aligned: eyes levelled, "
                    "resampled")] = "native"
    min_size: Annotated[Integer, Ge(8), Field(description="smallest face side, in pixels, that counts as a face")
                        ] = 48
    margin: Annotated[Number, Ge(0), Le(1), Field(
        description="context kept around a face box, as a fraction of its side")] = 0.2
    no_face: Annotated[Literal[*FACE_FALLBACKS], Field(
        description="an image without a face: quarantine (left out, listed with the reason) or whole_image "
                    "(kept, scored whole as serving scores an upload without a face)")] = "quarantine"


@dataclass(frozen=True, config=MODEL_CONFIG)
class VideoParams:
    """data.video: how the frames stage turns each video of the dataset into the frames the model learns from."""

    frames_per_video: Annotated[Integer, Ge(1), Le(256), Field(
        description="frames taken from each video, spread evenly over its duration (the middle of equal spans)")
                                ] = 8
    max_duration_s: Annotated[Number, Gt(0), Field(
        description="a longer video is quarantined with the reason, like an undecodable image")] = 600.0
    max_frame_pixels: Annotated[Integer, Ge(1), Field(
        description="width x height of a frame; a video with larger frames is quarantined")] = 3840 * 2160


SplitShare = Annotated[Number, Gt(0.0), Le(1.0)]


@dataclass(frozen=True, config=MODEL_CONFIG)
class SplitParams:
    """data.split: the share of groups in each split (near-duplicates never straddle two)."""

    train: Annotated[SplitShare, Field(description="share of groups the model learns from")] = 0.7
    val: Annotated[SplitShare, Field(description="share that picks the threshold, temperature and best epoch")
                   ] = 0.15
    test: Annotated[SplitShare, Field(description="share held out for the reported metrics")] = 0.15

    @model_validator(mode="after")
    def _sums_to_one(self) -> Self:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise Problem(f"train + val + test must be 1.0, got {total:g}")
        return self


def _check_sources(value: Any) -> Any:
    """A list's entries, each with a message naming data.source[i], before pydantic reads them."""
    if not isinstance(value, list | tuple):
        return value  # one source: a string, or a type pydantic words
    if not value:
        raise Problem("an empty list names no data; give one source, or a list of sources to combine")
    first_at: dict[str, int] = {}
    for index, entry in enumerate(value):
        if not isinstance(entry, str) or not entry.strip():
            raise Problem(f"expected a non-empty string (a source), got {entry!r}", at=f"[{index}]")
        earlier = first_at.setdefault(entry.strip(), index)
        if earlier != index:
            raise Problem(f"{displayable_source(entry)!r} is listed twice (also data.source[{earlier}])",
                          at=f"[{index}]")
    return value


def source_label(source: str | Sequence[str]) -> str:
    """data.source as one line for people and records (MLflow, model card, reports): a list's entries
    joined by " + ", every URL without its credentials."""
    entries = (source,) if isinstance(source, str) else tuple(source)
    return " + ".join(displayable_source(entry) for entry in entries)


Checksum = Annotated[Text, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$"), AfterValidator(str.lower)]


@dataclass(frozen=True, config=MODEL_CONFIG)
class DataParams:
    """data: where the images come from, how they are checked, and how they are split."""

    source: Annotated[Text | Annotated[tuple[Annotated[Text, StringConstraints(pattern=r"\S")], ...], MinLen(1),
                                       Field(json_schema_extra={"uniqueItems": True})],
                      BeforeValidator(_check_sources), Expect("a source, or a non-empty list of distinct sources"),
                      Field(description=(
                          "demo | demo:<family> | demo-video[:<family>] | a folder | a .zip/.tar/.tar.gz | "
                          "file://... | http(s)://... | kaggle:<owner>/<dataset>; or a list of them, trained on "
                          "together"))] = "demo"
    sha256: Annotated[Checksum | tuple[Checksum | None, ...] | None,
                      Expect("a 64-character hex SHA-256 (or null); with a list in data.source, a list of them "
                             "(or nulls), one per source"),
                      Field(description="optional checksum of a downloaded or local archive (a list: one per source)")
                      ] = None
    class_names: Annotated[ClassNames, AfterValidator(_disjoint), Field(
        description="folder or data.csv label -> class; fake = 1 = positive")] = field(
        default_factory=lambda: {"fake": ("fake",), "real": ("real",)})
    max_archive_members: Annotated[Integer, Ge(1), Field(
        description="refuse archives with more members than this")] = 100_000
    max_extracted_bytes: Annotated[Megabytes, Field(
        alias="max_extracted_mb", description="refuse archives that unpack to more than this, in MB")] = 4096 * MEGABYTE
    download_timeout_s: Annotated[Number, Gt(0), Field(
        description="seconds a download may wait to connect or for its next bytes")] = 60
    max_download_bytes: Annotated[Megabytes, Field(
        alias="max_download_mb", description="refuse URL and Kaggle downloads larger than this, in MB")
    ] = 4096 * MEGABYTE
    max_download_s: Annotated[Number, Gt(0), Field(
        description="refuse URL and Kaggle downloads that take longer than this in total, in seconds")] = 3600
    allow_http: Annotated[Flag, Field(
        description="also download from plain http:// URLs (https only when false; a redirect from https "
                    "to http is always refused)")] = False
    demo: DemoParams = field(default_factory=DemoParams)
    video: VideoParams = field(default_factory=VideoParams)
    faces: FacesParams = field(default_factory=FacesParams)
    min_image_size: Annotated[Integer, Ge(1), Field(description="smaller images are quarantined")] = 64
    max_bad_fraction: Annotated[Fraction, Field(description="fail validation above this share of bad files")] = 0.05
    near_duplicate_hamming: Annotated[Integer, Ge(0), Le(64), Field(
        description="perceptual-hash distance that makes two images one group")] = 4
    split: SplitParams = field(default_factory=SplitParams)
    seed: Annotated[Seed, Field(description="seed of the split")] = 42

    @model_validator(mode="after")
    def _one_checksum_per_source(self) -> Self:
        if isinstance(self.source, str) and isinstance(self.sha256, tuple):
            raise Problem("a list of checksums needs a list of sources in data.source; give one checksum "
                          "(or null)", at=".sha256")
        if isinstance(self.source, tuple) and isinstance(self.sha256, str):
            raise Problem(f"data.source lists {len(self.source)} sources, so data.sha256 must be null or a list "
                          "with one checksum (or null) per source, in the same order", at=".sha256")
        if isinstance(self.sha256, tuple) and len(self.sha256) != len(self.source):
            raise Problem(f"{len(self.sha256)} checksum(s) for {len(self.source)} sources in data.source; give "
                          "one checksum (or null) per source, in the same order", at=".sha256")
        return self

    @property
    def training_sources(self) -> tuple[str, ...]:
        """Every source the model trains on, in order: data.source as a tuple, whether one or a list."""
        return (self.source,) if isinstance(self.source, str) else tuple(self.source)

    @property
    def checksums(self) -> tuple[str | None, ...]:
        """The data.sha256 of each entry of training_sources."""
        if isinstance(self.sha256, tuple):
            return self.sha256
        return (self.sha256,) * len(self.training_sources)

    @property
    def is_multi_source(self) -> bool:
        """data.source is a list: each entry gets its own folder and a `source` column in index and manifest."""
        return not isinstance(self.source, str)

    @property
    def source_label(self) -> str:
        return source_label(self.source)


# ---- model and train ------------------------------------------------------------------------------

@dataclass(frozen=True, config=MODEL_CONFIG)
class ModelParams:
    """model: the MobileNetV2 classifier the prepare_model stage builds."""

    alpha: Annotated[Literal[MOBILENET_WIDTHS], NotBoolean,  # type: ignore[valid-type]
                     Expect(f"one of {', '.join(map(str, MOBILENET_WIDTHS))} (MobileNetV2 widths)"),
                     Field(description="MobileNetV2 width multiplier")] = 1.0
    image_size: Annotated[Integer, Ge(32), Le(1024), Field(description="input side in pixels")] = 224
    weights: Annotated[Text, Field(description=(
        "imagenet | none | path to MobileNetV2 no-top (backbone) weights, .h5 or .weights.h5"))] = "none"
    dropout: Annotated[Number, Ge(0.0), Lt(1.0), Field(description="dropout before the output unit")] = 0.2
    batch_norm_momentum: Annotated[Number, Gt(0.0), Lt(1.0), Field(
        description="Keras' 0.99 keeps from-scratch inference constant for long")] = 0.9
    freeze_batch_norm: Annotated[Flag | Literal["auto"], Expect("true, false or 'auto'"), Field(
        description="auto = frozen with pretrained weights, trained from scratch")] = "auto"
    representation: Annotated[Literal["rgb", "npr"], Field(description=(
        "what the backbone sees, built inside the model: rgb (the pixels) or npr (the neighbouring-pixel "
        "residual x - up(down(x)), Tan et al. CVPR 2024)"))] = "npr"
    input_fit: Annotated[Literal["crop", "resize"], Field(description=(
        "how an image becomes the model's input: crop (the center image_size square at the image's own "
        "resolution, where up-sampling traces live; smaller images are resized) or resize (the whole image, "
        "antialiased bilinear, which blurs those traces)"))] = "crop"
    seed: Annotated[Seed, Field(description="seed of the initial weights")] = 42


    @model_validator(mode="after")
    def _npr_needs_an_even_side(self) -> Self:
        if self.representation == "npr" and self.image_size % 2:
            raise Problem(f"model.representation npr compares each pixel with its 2x2 cell, so model.image_size "
                             f"must be even (got {self.image_size})")
        return self

@dataclass(frozen=True, config=MODEL_CONFIG)
class AugmentParams:
    """train.augment: photometric and forensic augmentation, applied while training only."""

    enabled: Annotated[Flag, Field(description="false turns all of it off")] = True
    flip: Annotated[Flag, Field(description="horizontal flips")] = True
    # Rotation and zoom resample every pixel, which smears the up-sampling traces the detector
    # looks for; they are off by default and available for content-level robustness.
    rotation: Annotated[Fraction, Field(description="fraction of a full turn")] = 0.0
    zoom: Annotated[Fraction, Field(description="largest zoom in or out, as a fraction of the side")] = 0.0
    contrast: Annotated[Fraction, Field(description="largest contrast change, as a fraction")] = 0.1
    brightness: Annotated[Fraction, Field(description="largest brightness change, as a fraction of full scale")
                          ] = 0.05
    jpeg_probability: Annotated[Fraction, Field(description="share of images re-compressed as JPEG")] = 0.3
    jpeg_quality_min: Annotated[Integer, Ge(1), Le(100), Field(description="lowest re-compression quality")] = 70
    jpeg_quality_max: Annotated[Integer, Ge(1), Le(100), Field(description="highest re-compression quality")] = 100
    blur_probability: Annotated[Fraction, Field(description="share of images blurred")] = 0.1
    blur_sigma_max: Annotated[Number, Ge(0.5), Le(10.0), Field(
        description="largest Gaussian blur sigma in pixels (each blur draws from 0.5 to this)")] = 1.5
    rescale_probability: Annotated[Fraction, Field(description="share of images scaled down then up")] = 0.1
    rescale_min_factor: Annotated[Number, Gt(0.0), Le(1.0), Field(description="smallest down-scale factor")] = 0.6
    resynthesis_probability: Annotated[Fraction, Field(description=(
        "share of the real training images turned into fakes by re-synthesizing them at a lower resolution and "
        "enlarging them again (components/model/resynthesis.py): fakes of the principle, not of one generator"))] = 0.5
    resynthesis_region_probability: Annotated[Fraction, Field(
        description="of those, the share re-synthesized only inside a feathered elliptical region")] = 0.4
    resynthesis_noise_probability: Annotated[Fraction, Field(
        description="of those, the share with camera-like noise added afterwards")] = 0.5
    random_crop: Annotated[Flag, Field(description=(
        "with model.input_fit crop: train on a random image_size square of each image, at its own resolution "
        "and in any alignment with the generator's pixel grid, instead of the center one"))] = True

    @model_validator(mode="after")
    def _jpeg_range(self) -> Self:
        _check_jpeg_range(self.jpeg_quality_min, self.jpeg_quality_max)
        return self


@dataclass(frozen=True, config=MODEL_CONFIG)
class TrainParams:
    """train: two phases (head, then fine-tuning), callbacks, and scale-out across devices."""

    batch_size: Annotated[Integer, Ge(1), Field(
        description="images per step, per replica; the global batch is batch_size x replicas")] = 16
    head_epochs: Annotated[Integer, Ge(0), Field(
        description="phase one: backbone frozen (useful with pretrained weights)")] = 0
    head_learning_rate: Annotated[Number, Gt(0), Field(description="learning rate of phase one")] = 0.001
    fine_tune_epochs: Annotated[Integer, Ge(0), Field(description="phase two: top fine_tune_layers unfrozen")] = 4
    fine_tune_layers: Annotated[Annotated[Integer, Ge(0)] | Literal["all"], Expect("a layer count >= 0 or 'all'"),
                                Field(description="a count of top backbone layers, all, or 0 to skip phase two")
                                ] = "all"
    fine_tune_learning_rate: Annotated[Number, Gt(0), Field(description="learning rate of phase two")] = 0.001
    min_steps: Annotated[Integer, Ge(0), Field(description=(
        "at least this many optimizer steps: on a small train split the last phase gets more epochs, and "
        "early stopping and learning-rate drops wait until then"))] = 420
    early_stopping_patience: Annotated[Integer, Ge(0), Field(description="epochs without a better val AUC")] = 4
    reduce_lr_patience: Annotated[Integer, Ge(0), Field(
        description="epochs without a better val AUC before the learning rate drops")] = 2
    reduce_lr_factor: Annotated[Number, Gt(0.0), Lt(1.0), Field(description="what the learning rate is multiplied by")
                                ] = 0.5
    class_weights: Annotated[Flag, Field(description="balance the loss by class counts")] = True
    cache: Annotated[Flag, Field(description="keep decoded images in memory")] = True
    seed: Annotated[Seed, Field(description="shuffling and augmentation seed")] = 42
    strategy: Annotated[Literal["auto", "mirrored", "multi_worker", "one_device"], Field(description=(
        "auto (all local GPUs when several, else one device), mirrored, multi_worker (TF_CONFIG), one_device"))
                        ] = "auto"
    learning_rate_scaling: Annotated[Literal["linear", "none"], Field(
        description="linear: learning rates x replicas (Goyal et al. 2017); none: as written")] = "linear"
    mixed_precision: Annotated[Literal["auto", "on", "off"],
                               yaml_words({True: "on", False: "off"}, Literal["auto", "on", "off"] | bool),
                               Expect("'auto', 'on' or 'off'"),
                               Field(description="auto: float16 compute on GPUs with compute capability >= 7.0")
                               ] = "auto"
    augment: AugmentParams = field(default_factory=AugmentParams)

    @model_validator(mode="after")
    def _trains_something(self) -> Self:
        if self.head_epochs + (self.fine_tune_epochs if self.fine_tune_layers != 0 else 0) == 0:
            raise Problem("head_epochs and fine_tune_epochs (with fine_tune_layers > 0) are both zero, "
                          "so nothing would be trained")
        return self


# ---- evaluate ---------------------------------------------------------------------------------------

@dataclass(frozen=True, config=MODEL_CONFIG)
class ExtraSetParams:
    """One entry of evaluate.extra_sets: another dataset, scored with the trained model."""

    name: Annotated[Text, StringConstraints(pattern=EXTRA_SET_NAME), Field(description="its folder name")]
    source: Annotated[Text, StringConstraints(pattern=r"\S"), Field(
        description="anything data.source takes, or demo:<style>")]


def _check_extra_sets(value: Any) -> Any:
    """The entries' shape, with the messages a user can act on (index, name), before pydantic reads them."""
    if not isinstance(value, list | tuple):
        raise Problem(f"expected a list of {{name, source}} mappings, got {value!r}")
    names = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict) or set(entry) != {"name", "source"}:
            raise Problem(f"entry {index}: expected a mapping with exactly 'name' and 'source', got {entry!r}")
        name, source = entry["name"], entry["source"]
        if not isinstance(name, str) or not re.match(EXTRA_SET_NAME, name):
            raise Problem(f"entry {index}: name must be letters, digits, '.', '_' or '-', got {name!r}")
        if not isinstance(source, str) or not source.strip():
            raise Problem(f"entry {index} ({name}): source must be a non-empty string, got {source!r}")
        names.append(name)
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise Problem(f"names listed twice: {duplicated}")
    return value


def severities(low: float, high: float, *, open_low: bool = False) -> Any:
    """A list of distinct perturbation severities within bounds (empty skips that perturbation)."""
    bound = Gt(low) if open_low else Ge(low)
    return Annotated[distinct(Annotated[Number, bound, Le(high)]),
                     Expect(f"a list of distinct numbers in {'(' if open_low else '['}{low}, {high}]")]


@with_config(MODEL_CONFIG)
class Severities(TypedDict):
    """evaluate.robustness: the test split re-scored under each perturbation, mild to harsh."""

    jpeg: Annotated[severities(1, 100), Field(description="re-compression quality")]
    rescale: Annotated[severities(0, 1, open_low=True), Field(description="down-scale factor, then back up")]
    blur: Annotated[severities(0, 20, open_low=True), Field(description="Gaussian sigma, pixels")]
    noise: Annotated[severities(0, 255, open_low=True), Field(description="Gaussian noise std, 0-255")]
    crop: Annotated[severities(0, 1, open_low=True), Field(
        description="center crop keeping this fraction of each side, resized back")]
    brightness_contrast: Annotated[severities(0, 0.9, open_low=True), Field(
        description="brightness + amount, contrast x (1 - amount)")]


@dataclass(frozen=True, config=MODEL_CONFIG)
class EvaluateParams:
    """evaluate: the test metrics, and the trust checks around them (robustness, other sets, shortcuts)."""

    threshold: Annotated[Annotated[Number, Gt(0), Lt(1)] | Literal["eer", "youden"],
                         Expect("a number in (0, 1), 'eer' or 'youden'"),
                         Field(description="a number in (0, 1), eer or youden; chosen on validation")] = "eer"
    batch_size: Annotated[Integer, Ge(1), Field(description="images per scoring step")] = 64
    calibration_bins: Annotated[Integer, Ge(2), Le(100), Field(description="bins of the calibration curve and ECE")
                                ] = 10
    seed: Annotated[Seed, Field(description="bootstrap resamples, robustness noise, shortcut-audit folds")] = 0
    bootstrap: Annotated[Integer, Ge(0), Field(
        description="stratified resamples for 95 % intervals on test metrics; 0 = none")] = 0
    calibrate: Annotated[Flag, Field(
        description="temperature scaling fitted on val; serving returns calibrated P(fake)")] = False
    extra_sets: Annotated[tuple[ExtraSetParams, ...], BeforeValidator(_check_extra_sets), Field(
        description="other datasets scored with the trained model: anything data.source takes, or demo:<style>")
                          ] = (ExtraSetParams(name="demo-style-b", source="demo:b"),)
    extra_demo_images_per_class: Annotated[Annotated[Integer, Ge(2)] | None, Field(description=(
        "images per class of each demo:<family> extra set; null = data.demo.images_per_class"))] = None
    warn_auc: Annotated[Number, Ge(0.5), Le(1), Field(
        alias="shortcut_warn_auc",
        description="warn when one accidental cue alone separates the classes this well")] = 0.8
    severities: Annotated[Severities, Field(
        alias="robustness", description="test split re-scored under each perturbation and severity")] = field(
        default_factory=lambda: {"jpeg": (90, 70, 50, 30), "rescale": (0.75, 0.5, 0.25), "blur": (0.5, 1.0, 2.0),
                                 "noise": (2, 5, 10), "crop": (0.9, 0.75, 0.5),
                                 "brightness_contrast": (0.1, 0.2, 0.3)})


# ---- export and serve -------------------------------------------------------------------------------

@dataclass(frozen=True, config=MODEL_CONFIG)
class ExportParams:
    """export: which model files to build, and the parity gates each must pass."""

    variants: Annotated[distinct(ExportVariant), MinLen(1),
                        Expect(f"a non-empty list of distinct variants among {', '.join(VARIANT_FILES)}"),
                        Field(description=(
                            "keras (model.keras), float32 (model.tflite), float16 (model_fp16.tflite), int8_dynamic "
                            "(model_int8.tflite: int8 weights, float activations), int8_full (model_int8_full.tflite: "
                            "int8 weights and activations, calibrated on train images)"))] = tuple(VARIANT_FILES)
    calibration_images: Annotated[Integer, Ge(1), Field(
        description="train images that calibrate int8_full's activation ranges")] = 200
    max_float32_diff: Annotated[Number, Gt(0), Field(
        description="the stage fails if float32 TFLite differs from Keras by more")] = 1.0e-4
    max_auc_drop: Annotated[Fraction, Field(
        description="... or if a quantized export loses more validation ROC AUC than this")] = 0.005


@dataclass(frozen=True, config=MODEL_CONFIG)
class ServeParams:
    """serve: what the server loads and the limits it enforces. No stage reads these: no retraining."""

    backend: Annotated[Backend, Field(
        description="auto (tflite when the export matches model.h5, else keras), tflite or keras")] = "auto"
    variant: Annotated[ServedVariant | Literal["auto"], Field(
        description="which export the tflite backend loads (see export.variants); auto: the fastest on this CPU "
                    "of those that passed the export AUC gate")] = "auto"
    num_threads: Annotated[Annotated[Integer, Ge(1)] | None, Field(
        description="interpreter threads per inference; null = the cores divided by the inferences one "
                    "worker runs at once, at least 1")] = None
    max_in_flight: Annotated[Annotated[Integer, Ge(1)] | None, Field(
        description="predictions one worker runs at once; more wait in its queue (serve.max_queued), and beyond "
                    "that get 503 with Retry-After. null = the worker's threads minus one, minus the queue (at "
                    "least 1), so a thread stays free for health checks")] = None
    max_queued: Annotated[Integer, Ge(0), Field(
        description="prediction requests one worker holds waiting for a slot, each at most until its deadline, "
                    "instead of refusing them at once; beyond, 503 with Retry-After. Each waits on a thread of its "
                    "own (its body not yet read), so the worker's threads bound it: one thread always stays free "
                    "for health checks")] = 4
    request_deadline_s: Annotated[Number, Gt(0), Field(
        description="seconds a prediction request may take from arrival; past it, 503 with Retry-After")] = 10.0
    threshold: Annotated[Annotated[Number, Gt(0), Lt(1)] | None, Field(
        description="null = the threshold the evaluate stage chose on validation")] = None
    face_detector: Annotated[Literal[*SERVED_FACE_DETECTORS],
                             yaml_words({False: "off"}, Literal[*SERVED_FACE_DETECTORS] | Literal[False]),
                             Expect("'auto', 'off', 'blazeface' or 'blazeface_full_range'"),
                             Field(description="auto (crop faces as the served model was trained: its card's "
                                               "input.faces, from data.faces), off, blazeface (MediaPipe's "
                                               "short-range BlazeFace: faces filling much of the picture) or "
                                               "blazeface_full_range (small and many faces); both on LiteRT, "
                                               "weights from requirements-faces.txt")
                             ] = "auto"
    face_crop: Annotated[Literal[*FACE_CROPS], Field(
        description="native: a square around the face at the image's own resolution; aligned: eyes levelled "
                    "at a fixed scale (resampled; for a model trained on aligned crops)")] = "native"
    face_policy: Annotated[Literal["largest", "all"], Field(
        description="largest: score the largest face; all: score every face found")] = "largest"
    face_min_size: Annotated[Integer, Ge(8), Field(
        description="smallest face side, in pixels, that counts as a face")] = 48
    face_margin: Annotated[Number, Ge(0), Le(1), Field(
        description="context kept around a face box, as a fraction of its side")] = 0.2
    video_frames: Annotated[Integer, Ge(1), Le(256), Field(
        description="frames of a video scored, spread evenly over its duration (unless video_fps is set)")] = 16
    video_fps: Annotated[Annotated[Number, Gt(0), Le(30)] | None, Field(
        description="instead of video_frames: score at most this many frames per second of video; null = off")
                         ] = None
    video_aggregation: Annotated[Literal[*SERVED_AGGREGATIONS], Field(
        description="how frame scores make the video's P(fake): auto (the rule evaluate chose on validation "
                    "videos, from the model card; mean without one), mean, median, max, or top_k_mean (the mean "
                    "of the most fake quarter of the frames)")] = "auto"
    video_max_duration_s: Annotated[Number, Gt(0), Field(
        description="longer videos are refused (413), by their header and again while decoding")] = 120.0
    video_max_frame_pixels: Annotated[Integer, Ge(1), Field(
        description="width x height of a video frame; larger videos are refused (413)")] = 3840 * 2160
    video_max_frames_decoded: Annotated[Integer, Ge(1), Field(
        description="frames one video may make the server decode (sampled or not) before it is refused (413)")
                                        ] = 7200
    max_request_bytes: Annotated[Megabytes, Field(
        alias="max_request_mb", description="whole request body, in MB (an image or video upload included)")
    ] = 16 * MEGABYTE
    max_image_pixels: Annotated[Integer, Ge(1), Field(
        description="width x height, checked from the header before decoding")] = 40_000_000
    max_images_per_request: Annotated[Integer, Ge(1), Field(description="files one request may score")] = 8
    cors_origins: Annotated[tuple[Text, ...], Expect("a list of origins such as 'https://example.org'"), Field(
        description="origins allowed to call the API from a browser; [] = none")] = ()
    training_enabled: Annotated[Flag, Field(
        description="POST /api/v1/train (token in DEEPFAKE_DETECTOR_TRAIN_TOKEN)")] = False


@dataclass(frozen=True, config=MODEL_CONFIG)
class Params:
    """params.yaml: hyper-parameters grouped by component. DVC reruns a stage when a key it names changes."""

    data: DataParams
    model: ModelParams
    train: TrainParams
    evaluate: EvaluateParams
    export: ExportParams
    serve: ServeParams
