"""Cross-dataset evaluation: ingest extra named datasets (other generators, other cameras) and score
the trained model on them, beside its in-distribution test score, to show how far it generalizes.
`CrossDatasetEvaluator` is the cross_dataset stage's component.

cross_dataset.json holds three keys:
- reference: the in-distribution test row, restated from scores.json: name, source (the training data's
  label), n, and for each of roc_auc, accuracy, eer, average_precision the value and its 95 % interval
  `<metric>_ci_low` / `<metric>_ci_high` (null where the evaluate stage drew no bootstrap).
- sets: one row per set of evaluate.extra_sets, in order: name, source, seen (true when the source is one
  the model trained on: `demo` is `demo:<data.demo.style>`), n, n_fake, n_real, the same metrics and
  intervals (evaluate.bootstrap stratified resamples seeded with evaluate.seed, as the evaluate stage
  draws them), and note. A set holding one class has accuracy only: its other metrics and every
  interval are null, and note says why.
- summary: the sets not seen in training that hold both classes (the leave-one-generator-out view):
  n_sets, sets (their names), mean_roc_auc with mean_roc_auc_ci_low / _ci_high (a joint bootstrap: each
  resample redraws every set independently, stratified, and averages the per-set values), min_roc_auc
  and min_roc_auc_set (the set it comes from), and the same five for accuracy. Numbers are null when no
  set qualifies; intervals are null when evaluate.bootstrap is 0.
"""
from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from deepfake_detector.components.data.datasets import build_dataset
from deepfake_detector.components.data.faces import crop_images
from deepfake_detector.components.data.image_checks import ImageCheck, inspect_image
from deepfake_detector.components.data.ingestion import DataIngestion
from deepfake_detector.components.data.sources import resolve_source
from deepfake_detector.components.evaluation.bootstrap import bootstrap_intervals
from deepfake_detector.components.evaluation.generalization import TrainingSources, summarize_unseen
from deepfake_detector.components.evaluation.metrics import compute_scores, predict_labels
from deepfake_detector.config.entities import CrossDatasetConfig, DataIngestionConfig, ExtraSetConfig
from deepfake_detector.contracts.errors import DataValidationError, IngestionError, ModelError
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, LABELS_BY_NAME, REAL
from deepfake_detector.contracts.scores import read_scores
from deepfake_detector.inference.keras_model import load_keras_model
from deepfake_detector.utils.files import atomic_directory, write_json_atomic

logger = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
ROW_METRICS = ("roc_auc", "accuracy", "eer", "average_precision")
# compute_scores also reports calibration, which the cross-dataset rows leave out; any bin count does.
CALIBRATION_BINS = 10
MAX_DECODE_THREADS = 8  # Pillow releases the GIL while decoding
INTERVAL_SUFFIXES = ("_ci_low", "_ci_high")
# Each row metric followed by its interval's bounds: the order rows are written in.
METRIC_KEYS = tuple(f"{metric}{suffix}" for metric in ROW_METRICS for suffix in ("", *INTERVAL_SUFFIXES))
REFERENCE_NAME = "test (in-distribution)"
HEADLINE_METRICS = ("roc_auc", "accuracy", "eer")
HEADLINE_KEYS = tuple(f"{metric}{suffix}" for metric in HEADLINE_METRICS for suffix in ("", *INTERVAL_SUFFIXES))
# MLflow groups metrics as cross/<set name>/<key>; a set name cannot hold "/", so this never collides.
SUMMARY_GROUP = "unseen/summary"


@dataclass(frozen=True)
class CrossDatasetResult:
    results_file: Path
    reference: dict[str, Any]           # the in-distribution test row, from scores.json
    sets: tuple[dict[str, Any], ...]    # one row per extra set, as written (see the module docstring)
    summary: dict[str, Any]             # over the unseen sets, as written

    @property
    def headline_metrics(self) -> dict[str, dict[str, float]]:
        """What MLflow records, by group: per set, ROC AUC, accuracy and EER with their intervals where the
        set has them (a one-class set: accuracy only), and under SUMMARY_GROUP the summary's numbers."""
        groups = {row["name"]: {key: row[key] for key in HEADLINE_KEYS if row.get(key) is not None}
                  for row in self.sets}
        if self.summary["n_sets"]:
            groups[SUMMARY_GROUP] = {key: value for key, value in self.summary.items()
                                     if isinstance(value, int | float) and not isinstance(value, bool)}
        return groups


class CrossDatasetEvaluator:
    """The cross_dataset stage: every set of evaluate.extra_sets ingested, cleaned and scored at the
    evaluate stage's raw-output threshold, written beside the in-distribution test row.

    reference_source is how the training data is named in that row (params.yaml: data.source). A set
    counts as seen when its source is one of config.ingestion's training sources.
    """

    def __init__(self, config: CrossDatasetConfig, reference_source: str) -> None:
        self.config = config
        self.reference_source = reference_source

    def run(self) -> CrossDatasetResult:
        config = self.config
        scores = read_scores(config.scores_file)  # the reference row restates the evaluation as it is
        reference = {"name": REFERENCE_NAME, "source": self.reference_source, "n": scores.get("n_test"),
                     **{key: scores.get(key) for key in METRIC_KEYS}}
        if not config.extra_sets:
            logger.info("evaluate.extra_sets is empty: no other datasets to score")
        sets = {extra.name: prepare_extra_set(extra, config.ingestion, config.root_dir,
                                              min_image_size=config.min_image_size,
                                              demo_images_per_class=config.extra_demo_images_per_class)
                for extra in config.extra_sets}
        if config.faces.enabled:  # scored as the model was trained: on the faces stage's crop
            sets = {name: face_crops_of_extra_set(name, frame, config) for name, frame in sets.items()}
        threshold = scores.rule.raw_threshold
        predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if sets:
            scores.require_model(config.model_file)  # its threshold must be this model's
            model = load_keras_model(config.model_file, config.image_size)
            predictions = predict_extra_sets(model, sets, image_size=config.image_size, batch_size=config.batch_size,
                                             input_fit=config.input_fit)
        training = TrainingSources(config.ingestion.training_sources, config.ingestion.demo.style)
        rows = score_extra_sets(predictions, threshold=threshold, training=training, resamples=config.bootstrap,
                                seed=config.seed, sources={extra.name: extra.source for extra in config.extra_sets})
        summary = summarize_unseen(rows, predictions, threshold, resamples=config.bootstrap, seed=config.seed)
        write_cross_dataset(rows, config.results_file, reference, summary)
        for row in rows:
            logger.info("%s (%s in training): ROC AUC %s%s, accuracy %.4f on %d images (in-distribution test "
                        "ROC AUC %s)", row["name"], "seen" if row["seen"] else "not seen", _format(row["roc_auc"]),
                        _interval_text(row, "roc_auc"), row["accuracy"], row["n"], _format(reference["roc_auc"]))
        _log_summary(summary)
        return CrossDatasetResult(results_file=config.results_file, reference=reference, sets=tuple(rows),
                                  summary=summary)


def check_set_name(name: str) -> str:
    """name, if it can be a folder of its own under the work folder; ValueError otherwise."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or set(name) == {"."}:
        raise ValueError(f"params.yaml: evaluate.extra_sets name {name!r} is not a safe folder name; use "
                         "letters, digits, '_', '.' and '-' only (and not just dots)")
    return name


def prepare_extra_set(extra: ExtraSetConfig, ingestion: DataIngestionConfig, work_dir: Path, *,
                      min_image_size: int, demo_images_per_class: int | None = None) -> pd.DataFrame:
    """Ingest extra.source into work_dir/<name> with the ingest stage's own component and return its
    usable images as columns path (absolute) and label, sorted by path.

    A demo source draws with seed + 1, so its images are never the training set's, and
    demo_images_per_class images per class when given. Images the
    validate stage would quarantine (unreadable, too small) and labels mapping to neither class
    are dropped, with a warning that counts them.
    """
    name = check_set_name(extra.name)
    setting = f"evaluate.extra_sets[{name}].source"
    source = resolve_source(extra.source, setting)  # fail on a bad source before touching any folder
    root = Path(work_dir) / name
    config = replace(ingestion, root_dir=root, dataset_dir=root / "dataset", index_file=root / "index.csv",
                     report_file=root / "ingest.json", source=extra.source, sha256=None)
    if source.kind == "demo":
        count = demo_images_per_class or ingestion.demo.images_per_class
        config = replace(config, demo=replace(ingestion.demo, seed=ingestion.demo.seed + 1, images_per_class=count))
    logger.info("Extra set %r: ingesting %s", name, source.display)
    try:
        result = DataIngestion(config).run()
    except IngestionError as error:
        raise IngestionError(f"params.yaml: evaluate.extra_sets {name!r}: {error}") from None

    index = pd.read_csv(result.index_file, dtype=str, keep_default_na=False)
    index = _drop_unlabeled(index, name)
    paths = [str((result.dataset_dir / path).resolve()) for path in index["path"]]
    checks = _inspect(paths, min_image_size)
    problems = [check.problem for check in checks if not check.is_usable]
    if problems:
        logger.warning("Extra set %r: dropped %d of %d images as unusable (%s)", name, len(problems),
                       len(checks), _summarize(problems))
    frame = pd.DataFrame({"path": paths, "label": index["label"].to_numpy()})
    frame = frame[[check.is_usable for check in checks]].reset_index(drop=True)
    if frame.empty:
        raise DataValidationError(f"params.yaml: evaluate.extra_sets {name!r}: no usable images in "
                                  f"{source.display} ({len(checks)} checked, all dropped)")
    logger.info("Extra set %r: %d fake and %d real images", name, int((frame["label"] == FAKE).sum()),
                int((frame["label"] == REAL).sum()))
    return frame


def face_crops_of_extra_set(name: str, frame: pd.DataFrame, config: CrossDatasetConfig) -> pd.DataFrame:
    """prepare_extra_set's frame with each image replaced by its face crop (components/data/faces.py, cut as
    for training), in work_dir/<name>/faces; images without a face follow data.faces.no_face."""
    dataset_dir = (Path(config.root_dir) / name / "dataset").resolve()
    relative = [str(Path(path).relative_to(dataset_dir)) for path in frame["path"]]
    target = Path(config.root_dir) / name / "faces"
    with atomic_directory(target) as staging:
        outcomes = crop_images(relative, dataset_dir, staging, config.faces, config.image_size, config.input_fit)
    crops = [None if outcome.crop is None else str((target / outcome.crop).resolve()) for outcome in outcomes]
    kept = frame.assign(path=crops)[[crop is not None for crop in crops]].reset_index(drop=True)
    found = sum(outcome.face is not None for outcome in outcomes)
    logger.info("Extra set %r: a face in %d of %d images (%s); %d crops scored", name, found, len(outcomes),
                config.faces.detector, len(kept))
    if kept.empty:
        raise DataValidationError(f"params.yaml: evaluate.extra_sets {name!r}: the face detector found no face "
                                  f"in any of its {len(outcomes)} images (data.faces.no_face: quarantine)")
    return kept


def _drop_unlabeled(index: pd.DataFrame, name: str) -> pd.DataFrame:
    """The index rows whose class is fake or real, with an int label column."""
    labels = index["class_name"].map(LABELS_BY_NAME)
    unknown = index.loc[labels.isna(), "class_name"]
    if not unknown.empty:
        logger.warning("Extra set %r: dropped %d files whose labels map to no class: %s (list them under "
                       "params.yaml data.class_names to keep them)", name, len(unknown),
                       ", ".join(sorted(set(unknown))))
    kept = index[labels.notna()].copy()
    kept["label"] = labels[labels.notna()].astype(int)
    return kept


def _inspect(paths: list[str], min_size: int) -> list[ImageCheck]:
    """The validate stage's checks on every file, in parallel threads, in order."""
    workers = max(1, min(MAX_DECODE_THREADS, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(partial(inspect_image, min_size=min_size), paths), total=len(paths),
                         desc="checking images", unit="img", leave=False))


def _summarize(problems: Sequence[str]) -> str:
    """The reasons, counted: 'too small: 3, not an image: 1' (details after the first colon left out)."""
    counts = Counter(problem.split(":", 1)[0] for problem in problems)
    return ", ".join(f"{reason}: {count}" for reason, count in counts.most_common())


def predict_extra_sets(model, sets: Mapping[str, pd.DataFrame], *, image_size: int, batch_size: int,
                       input_fit: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per set, in the order given, its labels and the model's P(fake) for each image, checked to be
    one probability per image."""
    predictions = {}
    for name, frame in sets.items():
        check_set_name(name)
        labels = frame["label"].astype(int).to_numpy()
        dataset = build_dataset(frame["path"].astype(str).tolist(), labels.tolist(), image_size, batch_size,
                                fit=input_fit)
        probs = np.asarray(model.predict(dataset, verbose=0), dtype=np.float64).reshape(-1)
        if probs.size != labels.size:
            raise ModelError(f"extra set {name!r}: {probs.size} predictions for {labels.size} images")
        if not np.isfinite(probs).all() or (probs < 0).any() or (probs > 1).any():
            raise ModelError(f"extra set {name!r}: model outputs must be probabilities P(fake) in [0, 1]")
        predictions[name] = (labels, probs)
    return predictions


def score_extra_sets(predictions: Mapping[str, tuple[np.ndarray, np.ndarray]], *, threshold: float,
                     sources: Mapping[str, str], training: TrainingSources, resamples: int,
                     seed: int) -> list[dict[str, Any]]:
    """One row per set of predictions (labels, P(fake)), in the order given, as the module docstring
    lays out; seen says whether training includes the set's source.

    threshold should be the one the evaluate stage fixed on the validation split, so accuracy is
    what a user of the deployed model would see.
    """
    missing = [name for name in predictions if name not in sources]
    if missing:
        raise ValueError(f"no source given for extra set(s) {missing}")
    return [score_row(name, sources[name], labels, probs, threshold, seen=training.includes(sources[name]),
                      resamples=resamples, seed=seed) for name, (labels, probs) in predictions.items()]


def score_row(name: str, source: str, labels: np.ndarray, probs: np.ndarray, threshold: float, *, seen: bool,
              resamples: int, seed: int) -> dict[str, Any]:
    """One set's row of the cross-dataset table, its intervals from `resamples` stratified resamples
    seeded with seed (none when 0)."""
    n_fake, n_real = int((labels == FAKE).sum()), int((labels == REAL).sum())
    row: dict[str, Any] = {"name": name, "source": source, "seen": seen, "n": int(labels.size), "n_fake": n_fake,
                           "n_real": n_real}
    if n_fake and n_real:
        scores = compute_scores(labels, probs, threshold, CALIBRATION_BINS)
        scores.update(bootstrap_intervals(labels, probs, threshold, resamples=resamples, seed=seed,
                                          metrics=ROW_METRICS))
        return {**row, **{key: scores.get(key) for key in METRIC_KEYS}, "note": None}
    present = CLASS_NAMES[FAKE] if n_fake else CLASS_NAMES[REAL]
    accuracy = float((predict_labels(probs, threshold) == labels).mean())
    return {**row, **dict.fromkeys(METRIC_KEYS), "accuracy": accuracy,
            "note": f"only {present} images: ROC AUC, EER and average precision need both classes"}


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _interval_text(values: Mapping[str, Any], key: str) -> str:
    low, high = values.get(f"{key}_ci_low"), values.get(f"{key}_ci_high")
    return "" if low is None or high is None else f" (95 % CI {low:.4f}-{high:.4f})"


def _log_summary(summary: Mapping[str, Any]) -> None:
    if not summary["n_sets"]:
        logger.info("No extra set both unseen in training and holding both classes: no unseen-family summary")
        return
    logger.info("Over %d set(s) unseen in training (%s): mean ROC AUC %s%s, lowest %s (%s); mean accuracy %s%s, "
                "lowest %s (%s)", summary["n_sets"], ", ".join(summary["sets"]),
                _format(summary["mean_roc_auc"]), _interval_text(summary, "mean_roc_auc"),
                _format(summary["min_roc_auc"]), summary["min_roc_auc_set"], _format(summary["mean_accuracy"]),
                _interval_text(summary, "mean_accuracy"), _format(summary["min_accuracy"]),
                summary["min_accuracy_set"])


def write_cross_dataset(rows: Sequence[Mapping[str, Any]], path: Path, reference: Mapping[str, Any] | None,
                        summary: Mapping[str, Any]) -> Path:
    """Write {"reference": the in-distribution test row (or null), "sets": rows, "summary": summary}
    as JSON, atomically."""
    return write_json_atomic(path, {"reference": dict(reference) if reference is not None else None,
                                    "sets": [dict(row) for row in rows], "summary": dict(summary)})
