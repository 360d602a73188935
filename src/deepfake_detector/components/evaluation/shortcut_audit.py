"""Shortcut audit: how well each incidental cue (file size, JPEG history, dimensions, EXIF, color,
border, coarse content) separates fake from real ON ITS OWN, measured with a small cross-validated
classifier, so a dataset whose classes differ by accident is caught before a detector learns the accident.
`ShortcutAuditor` is the shortcut_audit stage's component.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, JpegImagePlugin, UnidentifiedImageError
from sklearn.base import ClassifierMixin
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from deepfake_detector.components.data.datasets import read_manifest, split_rows
from deepfake_detector.config.entities import ShortcutAuditConfig
from deepfake_detector.contracts.errors import ImageError
from deepfake_detector.contracts.labels import FAKE, REAL
from deepfake_detector.inference.images import (
    SUPPORTED_FORMATS,
    decode_image,
    exif_orientation,
    resize_for_model,
    upright_transpose,
)
from deepfake_detector.inference.keras_model import load_keras_model
from deepfake_detector.utils.files import write_json_atomic

logger = logging.getLogger(__name__)

CUES: dict[str, str] = {
    "file_size": "file size in bytes and bytes per pixel",
    "jpeg_quality": "JPEG quality estimated from the quantization tables, table statistics, chroma "
                    "subsampling and progressive flag (-1 and is_jpeg = 0 for other formats)",
    "dimensions": "width, height and aspect ratio as stored (before EXIF orientation)",
    "exif": "whether EXIF is present and how many tags it holds",
    "color_statistics": "per-channel mean and standard deviation and mean saturation of the whole picture",
    "border": "statistics of the outer 10% ring of the picture only (frames, letterboxing, padding); "
              "the center is never looked at",
    "thumbnail": "the picture shrunk to 8x8 RGB: only coarse layout and color survive",
}
MODEL_CUE = "model_on_thumbnail"
MODEL_CUE_DESCRIPTION = ("the trained model's own scores on pictures shrunk to a few pixels and blown back up: "
                         "it should not tell fake from real without the fine detail")

# What to do about each cue when it separates the classes; written into the warning.
REMEDIES: dict[str, str] = {
    "file_size": "re-encode both classes the same way, or draw reals and fakes from the same sources",
    "jpeg_quality": "re-encode both classes at the same (or the same spread of) JPEG quality and subsampling",
    "dimensions": "resize or crop both classes to the same sizes before training, or match their size spread",
    "exif": "strip EXIF from every image (or from none) so metadata cannot tell the classes apart",
    "color_statistics": "draw reals and fakes from the same scenes and sources, or balance them on color",
    "border": "crop away frames and padding in both classes, or add the same framing to both",
    "thumbnail": "draw reals and fakes from the same scenes and subjects so coarse content cannot tell them apart",
    MODEL_CUE: "the model leans on coarse content: check the cues above and train on data where they do not separate",
}

DEFAULT_WARN_AUC = 0.8
MIN_FOLDS = 2
HISTOGRAM_TREES_FROM = 10_000   # images; sklearn's own advice for HistGradientBoosting
# Pixel cues are computed on a square working copy of this side, so they cost the same for any image
# size and do not encode the dimensions (those are a cue of their own).
WORKING_SIDE = 128
BORDER_FRACTION = 0.10
OUTER_LINE = 2            # pixels of the working copy that count as the very edge of the picture
THUMBNAIL_SIDE = 8
DARK_LEVEL, BRIGHT_LEVEL = 16, 239
NOT_JPEG = -1.0
EXIF_IFD_TAG = 0x8769

# libjpeg's standard tables (ITU T.81 Annex K), which every libjpeg-based encoder scales by quality.
_STANDARD_LUMA_TABLE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)

AUDITED_SPLIT = "train"  # what the detector learned from: a cue there is a cue it could learn

ModelScorer = Callable[[Sequence[Path]], np.ndarray]


@dataclass(frozen=True)
class ShortcutAuditResult:
    results_file: Path
    audit: Mapping[str, Any]            # what results_file holds (see audit_shortcuts)

    @property
    def auc_by_cue(self) -> dict[str, float]:
        return {name: entry["auc"] for name, entry in self.audit["cues"].items()}

    @property
    def flagged(self) -> tuple[str, ...]:
        """The cues that reached warn_auc."""
        return tuple(self.audit["flagged"])


class ShortcutAuditor:
    """The shortcut_audit stage: every cue audited on the train split, plus the trained model's own
    scores on thumbnails, written as one JSON report."""

    def __init__(self, config: ShortcutAuditConfig) -> None:
        self.config = config

    def run(self) -> ShortcutAuditResult:
        config = self.config
        paths, labels = split_rows(read_manifest(config.manifest_file), AUDITED_SPLIT, config.dataset_dir)
        model = load_keras_model(config.model_file, config.image_size)

        def predict(batch: np.ndarray) -> np.ndarray:
            return model.predict(batch, batch_size=config.batch_size, verbose=0).reshape(-1)

        audit = audit_shortcuts(paths, labels, seed=config.seed, warn_auc=config.warn_auc,
                                model_scorer=thumbnail_scorer(predict, config.image_size,
                                                              batch_size=config.batch_size))
        write_audit(audit, config.results_file)
        return ShortcutAuditResult(results_file=config.results_file, audit=audit)


def extract_cue_features(path: str | Path) -> dict[str, np.ndarray]:
    """Every cue's feature vector (float64, fixed length per cue) for one image file, in CUES order.

    The file is opened once; metadata cues read the stored file as it is, pixel cues see the upright
    picture (EXIF orientation applied). A file Pillow cannot read raises ImageError naming it.
    """
    path = Path(path)
    try:
        size_bytes = path.stat().st_size
        with Image.open(path, formats=SUPPORTED_FORMATS) as image:
            width, height = image.size
            jpeg = _jpeg_features(image)
            exif = _exif_features(image)
            orientation = exif_orientation(image)
            pixels = _working_copy(image, orientation)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image in a supported format ({', '.join(SUPPORTED_FORMATS)})") from None
    except Image.DecompressionBombError as error:
        raise ImageError(f"{path}: too large to audit: {error}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError) as error:
        raise ImageError(f"{path}: unreadable or corrupt image: {error}") from None
    features = {
        "file_size": [size_bytes, size_bytes / (width * height)],
        "jpeg_quality": jpeg,
        "dimensions": [width, height, width / height],
        "exif": exif,
        "color_statistics": _color_features(pixels),
        "border": _border_features(pixels),
        "thumbnail": _thumbnail_features(pixels),
    }
    return {name: np.asarray(features[name], dtype=np.float64) for name in CUES}


def estimate_jpeg_quality(luma_table: Sequence[int]) -> float:
    """The libjpeg quality (1-100) whose scaling of the standard luminance table best matches this one.

    The ratio of table sums is used, which does not depend on the order the entries are listed in;
    encoders with their own tables (not scaled from libjpeg's) get the quality they come closest to.
    """
    table = np.asarray(luma_table, dtype=np.float64)
    scale = 100.0 * table.sum() / _STANDARD_LUMA_TABLE[: table.size].sum()
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return float(np.clip(quality, 1.0, 100.0))


def audit_shortcuts(paths: Sequence[str | Path], labels: Sequence[int], *, folds: int = 5, seed: int = 0,
                    warn_auc: float = DEFAULT_WARN_AUC, model_scorer: ModelScorer | None = None,
                    progress: bool = True) -> dict[str, Any]:
    """Each cue's out-of-fold ROC AUC at telling fake (1) from real (0) on its own, as a JSON-ready dict.

    Folds are stratified and shuffled with the seed, and reduced to the smaller class's size when it
    has fewer images than `folds` (at least 2). A cue reaching warn_auc is flagged and logged as a
    WARNING. model_scorer, when given, maps the paths to the trained model's P(fake) on degraded
    copies (see thumbnail_scorer); its AUC is reported as-is, since that model is already fixed.
    """
    paths = [Path(p) for p in paths]
    y = _check_labels(paths, labels)
    n_folds = _fold_count(y, folds)
    if not 0.5 < warn_auc <= 1.0:
        raise ValueError(f"warn_auc must lie in (0.5, 1], got {warn_auc}")
    rows = [extract_cue_features(path) for path in
            tqdm(paths, desc="shortcut audit: reading images", unit="image", leave=False, disable=not progress)]
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    cues: dict[str, dict[str, Any]] = {}
    for name, description in CUES.items():
        features = np.stack([row[name] for row in rows])
        cues[name] = _cue_entry(_cross_validated_auc(name, features, y, splitter, seed), description, warn_auc)
    if model_scorer is not None:
        cues[MODEL_CUE] = _cue_entry(_model_auc(model_scorer, paths, y), MODEL_CUE_DESCRIPTION, warn_auc)
    for name, entry in cues.items():
        logger.info("shortcut audit: %s alone separates fake from real with AUC %.3f", name, entry["auc"])
        if entry["flagged"]:
            _warn(name, entry["auc"], warn_auc)
    return {
        "warn_auc": float(warn_auc),
        "n_images": len(paths),
        "n_fake": int((y == FAKE).sum()),
        "n_real": int((y == REAL).sum()),
        "folds": n_folds,
        "cues": cues,
        "flagged": [name for name, entry in cues.items() if entry["flagged"]],
    }


def write_audit(result: dict[str, Any], path: str | Path) -> Path:
    """Write the audit as JSON atomically, so a reader never sees half a report."""
    return write_json_atomic(path, result)


def thumbnail_scorer(predict: Callable[[np.ndarray], np.ndarray], image_size: int, *,
                     coarse: int = THUMBNAIL_SIDE, batch_size: int = 32) -> ModelScorer:
    """A model_scorer for audit_shortcuts: each image decoded as in training, shrunk to coarse x coarse
    pixels, blown back up to image_size, and scored with predict (e.g. Predictor.predict: float32
    (N, S, S, 3) batches in [0, 255] -> P(fake)). Batches bound the memory for large splits.
    """
    if coarse < 1 or image_size < 1 or batch_size < 1:
        raise ValueError(f"coarse, image_size and batch_size must be positive, "
                         f"got {coarse}, {image_size}, {batch_size}")

    def score(paths: Sequence[Path]) -> np.ndarray:
        scores = []
        for start in range(0, len(paths), batch_size):
            batch = np.stack([resize_for_model(resize_for_model(decode_image(path), coarse), image_size)
                              for path in paths[start:start + batch_size]])
            scores.append(np.asarray(predict(batch.astype(np.float32)), dtype=np.float64).ravel())
        return np.concatenate(scores) if scores else np.empty(0, dtype=np.float64)

    return score


def _check_labels(paths: list[Path], labels: Sequence[int]) -> np.ndarray:
    y = np.asarray(labels).ravel()
    if y.size != len(paths):
        raise ValueError(f"{len(paths)} paths but {y.size} labels")
    if not np.isin(y, (REAL, FAKE)).all():
        raise ValueError(f"labels must be {REAL} (real) or {FAKE} (fake), got {sorted(set(y.tolist()))}")
    return y.astype(np.int64)


def _fold_count(y: np.ndarray, folds: int) -> int:
    if folds < MIN_FOLDS:
        raise ValueError(f"folds must be at least {MIN_FOLDS}, got {folds}")
    smallest = min(int((y == FAKE).sum()), int((y == REAL).sum()))
    if smallest < MIN_FOLDS:
        raise ValueError(f"the shortcut audit needs at least {MIN_FOLDS} fake and {MIN_FOLDS} real images, "
                         f"got {int((y == FAKE).sum())} fake and {int((y == REAL).sum())} real")
    if smallest < folds:
        logger.info("shortcut audit: %d folds instead of %d (the smaller class has %d images)",
                    smallest, folds, smallest)
    return min(folds, smallest)


def _classifier(name: str, n_images: int, seed: int) -> ClassifierMixin:
    """Shallow boosted trees learn thresholds and bands on a few features (a cue need not be monotonic);
    the 192-value thumbnail is better served by a regularised linear model.

    The same trees come from two estimators: the histogram one pays a fixed cost per iteration that
    makes it ten times slower on a few hundred images, and is faster from about 10,000 on.
    """
    if name == "thumbnail":
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    if n_images < HISTOGRAM_TREES_FROM:
        return GradientBoostingClassifier(max_depth=3, n_estimators=50, min_samples_leaf=5, random_state=seed)
    # early_stopping off: it would hold out a random validation set and tie the result to more than the seed.
    return HistGradientBoostingClassifier(max_depth=3, max_iter=50, min_samples_leaf=5, early_stopping=False,
                                          random_state=seed)


def _cross_validated_auc(name: str, features: np.ndarray, y: np.ndarray, splitter: StratifiedKFold,
                         seed: int) -> float:
    if np.ptp(features, axis=0).max() == 0:
        # A constant cue carries no information; fitting it would only turn fold-to-fold class ratios into noise.
        return 0.5
    probs = cross_val_predict(_classifier(name, len(y), seed), features, y, cv=splitter, method="predict_proba")
    return float(roc_auc_score(y, probs[:, FAKE]))  # predict_proba's columns follow the sorted classes (0, 1)


def _model_auc(model_scorer: ModelScorer, paths: list[Path], y: np.ndarray) -> float:
    scores = np.asarray(model_scorer(paths), dtype=np.float64).ravel()
    if scores.size != len(paths):
        raise ValueError(f"model_scorer returned {scores.size} scores for {len(paths)} images")
    if not np.isfinite(scores).all():
        raise ValueError("model_scorer returned a score that is NaN or infinite")
    return float(roc_auc_score(y, scores))


def _warn(name: str, auc: float, warn_auc: float) -> None:
    if name == MODEL_CUE:
        logger.warning("shortcut audit: the trained model tells fake from real on pictures shrunk to %dx%d pixels "
                       "(AUC %.3f >= %.2f): it relies on coarse content, not on the fine traces of faking. To fix: %s.",
                       THUMBNAIL_SIDE, THUMBNAIL_SIDE, auc, warn_auc, REMEDIES[name])
        return
    logger.warning("shortcut audit: the dataset separates fake from real by %s alone (AUC %.3f >= %.2f): a detector "
                   "may learn that difference instead of the fake, and fail on data where it does not hold. "
                   "To fix: %s.",
                   name, auc, warn_auc, REMEDIES[name])


def _cue_entry(auc: float, description: str, warn_auc: float) -> dict[str, Any]:
    return {"auc": round(auc, 4), "description": description, "flagged": bool(auc >= warn_auc)}


def _jpeg_features(image: Image.Image) -> list[float]:
    """[quality, is_jpeg, luma table mean, chroma table mean, luma table max, tables, subsampling, progressive]."""
    tables = getattr(image, "quantization", None)
    if image.format not in ("JPEG", "MPO") or not tables:
        return [NOT_JPEG, 0.0, NOT_JPEG, NOT_JPEG, NOT_JPEG, 0.0, NOT_JPEG, 0.0]
    luma = np.asarray(tables[min(tables)], dtype=np.float64)
    chroma = np.asarray(tables[sorted(tables)[1]], dtype=np.float64) if len(tables) > 1 else None
    return [
        estimate_jpeg_quality(luma),
        1.0,
        float(luma.mean()),
        float(chroma.mean()) if chroma is not None else NOT_JPEG,
        float(luma.max()),
        float(len(tables)),
        float(JpegImagePlugin.get_sampling(image)),
        float(bool(image.info.get("progressive") or image.info.get("progression"))),
    ]


def _exif_features(image: Image.Image) -> list[float]:
    """[EXIF present, tag count]; a broken EXIF block, common in the wild, counts as present with no tags."""
    has_exif = bool(image.info.get("exif"))
    try:
        exif = image.getexif()
        tags = len(exif) + len(exif.get_ifd(EXIF_IFD_TAG))
    except Exception:  # Pillow raises many types for malformed EXIF; none of them makes the image unusable
        tags = 0
    return [float(has_exif or tags > 0), float(tags)]


def _working_copy(image: Image.Image, orientation: int) -> np.ndarray:
    """float64 (WORKING_SIDE, WORKING_SIDE, 3) upright RGB in [0, 255].

    JPEGs are decoded at a reduced DCT scale (draft) when they are much larger than the working copy,
    which makes the audit of full-size photos several times faster.
    """
    image.draft("RGB", (2 * WORKING_SIDE, 2 * WORKING_SIDE))
    rgb = image.convert("RGB")
    transpose = upright_transpose(orientation)
    if transpose is not None:
        rgb = rgb.transpose(transpose)
    rgb = rgb.resize((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.float64)


def _luminance(pixels: np.ndarray) -> np.ndarray:
    return pixels @ np.array([0.299, 0.587, 0.114])


def _color_features(pixels: np.ndarray) -> list[float]:
    """[mean R, G, B, std R, G, B, mean saturation]."""
    flat = pixels.reshape(-1, 3)
    brightest, darkest = flat.max(axis=1), flat.min(axis=1)
    saturation = np.divide(brightest - darkest, brightest, out=np.zeros_like(brightest), where=brightest > 0)
    return [*flat.mean(axis=0), *flat.std(axis=0), float(saturation.mean())]


def _border_features(pixels: np.ndarray) -> list[float]:
    """Statistics of the outer ring only: per-channel mean and std, mean luminance of each side's band and
    of each side's outermost line, the luminance step from the edge inward, dark and bright fractions."""
    side = pixels.shape[0]
    ring = max(2 * OUTER_LINE, math.ceil(BORDER_FRACTION * side))
    mask = np.ones((side, side), dtype=bool)
    mask[ring:-ring, ring:-ring] = False
    ring_pixels = pixels[mask]
    lum = _luminance(pixels)
    ring_lum = lum[mask]
    bands = [lum[:ring], lum[-ring:], lum[:, :ring], lum[:, -ring:]]
    edges = [lum[:OUTER_LINE], lum[-OUTER_LINE:], lum[:, :OUTER_LINE], lum[:, -OUTER_LINE:]]
    inner = [lum[OUTER_LINE:2 * OUTER_LINE], lum[-2 * OUTER_LINE:-OUTER_LINE],
             lum[:, OUTER_LINE:2 * OUTER_LINE], lum[:, -2 * OUTER_LINE:-OUTER_LINE]]
    step = np.mean([np.abs(edge - within).mean() for edge, within in zip(edges, inner, strict=True)])
    return [
        *ring_pixels.mean(axis=0), *ring_pixels.std(axis=0),
        *(band.mean() for band in bands),
        *(edge.mean() for edge in edges),
        float(step),
        float((ring_lum < DARK_LEVEL).mean()), float((ring_lum > BRIGHT_LEVEL).mean()),
    ]


def _thumbnail_features(pixels: np.ndarray) -> np.ndarray:
    small = Image.fromarray(pixels.astype(np.uint8)).resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64).ravel() / 255.0
