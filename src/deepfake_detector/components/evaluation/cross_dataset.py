"""Cross-dataset evaluation: ingest extra named datasets (other generators, other cameras) and score
the trained model on them, beside its in-distribution test score, to show how far it generalizes.
`CrossDatasetEvaluator` is the cross_dataset stage's component."""
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
from deepfake_detector.components.data.image_checks import ImageCheck, inspect_image
from deepfake_detector.components.data.ingestion import DataIngestion
from deepfake_detector.components.data.sources import resolve_source
from deepfake_detector.components.evaluation.metrics import compute_scores, predict_labels
from deepfake_detector.config.entities import CrossDatasetConfig, DataIngestionConfig, ExtraSetConfig
from deepfake_detector.contracts.errors import DataValidationError, IngestionError, ModelError
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, LABELS_BY_NAME, REAL
from deepfake_detector.contracts.scores import read_scores
from deepfake_detector.inference.keras_model import load_keras_model
from deepfake_detector.utils.files import write_json_atomic

logger = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
ROW_METRICS = ("roc_auc", "accuracy", "eer", "average_precision")
# compute_scores also reports calibration, which the cross-dataset rows leave out; any bin count does.
CALIBRATION_BINS = 10
MAX_DECODE_THREADS = 8  # Pillow releases the GIL while decoding
REFERENCE_NAME = "test (in-distribution)"
# scores.json keys of the reference row, which names n_test "n" like every set's row.
REFERENCE_KEYS = ("n_test", "roc_auc", "accuracy", "eer", "average_precision")
HEADLINE_METRICS = ("roc_auc", "accuracy", "eer")


@dataclass(frozen=True)
class CrossDatasetResult:
    results_file: Path
    reference: dict[str, Any]           # the in-distribution test row, from scores.json
    sets: tuple[dict[str, Any], ...]    # one row per extra set, as written (see score_extra_sets)

    @property
    def headline_metrics(self) -> dict[str, dict[str, float]]:
        """Per set, ROC AUC, accuracy and EER where the set has them (a one-class set: accuracy only)."""
        return {row["name"]: {key: row[key] for key in HEADLINE_METRICS if row.get(key) is not None}
                for row in self.sets}


class CrossDatasetEvaluator:
    """The cross_dataset stage: every set of evaluate.extra_sets ingested, cleaned and scored at the
    evaluate stage's raw-output threshold, written beside the in-distribution test row.

    reference_source is how the training data is named in that row (params.yaml: data.source).
    """

    def __init__(self, config: CrossDatasetConfig, reference_source: str) -> None:
        self.config = config
        self.reference_source = reference_source

    def run(self) -> CrossDatasetResult:
        config = self.config
        scores = read_scores(config.scores_file)  # the reference row restates the evaluation as it is
        reference = {"name": REFERENCE_NAME, "source": self.reference_source,
                     **{("n" if key == "n_test" else key): scores.get(key) for key in REFERENCE_KEYS}}
        if not config.extra_sets:
            logger.info("evaluate.extra_sets is empty: no other datasets to score")
        sets = {extra.name: prepare_extra_set(extra, config.ingestion, config.root_dir,
                                              min_image_size=config.min_image_size)
                for extra in config.extra_sets}
        rows = []
        if sets:
            scores.require_model(config.model_file)  # its threshold must be this model's
            model = load_keras_model(config.model_file, config.image_size)
            rows = score_extra_sets(model, sets, image_size=config.image_size, batch_size=config.batch_size,
                                    threshold=scores.rule.raw_threshold,
                                    sources={extra.name: extra.source for extra in config.extra_sets})
        write_cross_dataset(rows, config.results_file, reference)
        for row in rows:
            logger.info("%s: ROC AUC %s, accuracy %.4f on %d images (in-distribution test ROC AUC %s)",
                        row["name"], _format(row["roc_auc"]), row["accuracy"], row["n"],
                        _format(reference["roc_auc"]))
        return CrossDatasetResult(results_file=config.results_file, reference=reference, sets=tuple(rows))


def check_set_name(name: str) -> str:
    """name, if it can be a folder of its own under the work folder; ValueError otherwise."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or set(name) == {"."}:
        raise ValueError(f"params.yaml: evaluate.extra_sets name {name!r} is not a safe folder name; use "
                         "letters, digits, '_', '.' and '-' only (and not just dots)")
    return name


def prepare_extra_set(extra: ExtraSetConfig, ingestion: DataIngestionConfig, work_dir: Path, *,
                      min_image_size: int) -> pd.DataFrame:
    """Ingest extra.source into work_dir/<name> with the ingest stage's own component and return its
    usable images as columns path (absolute) and label, sorted by path.

    A demo source draws with seed + 1, so its images are never the training set's. Images the
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
        config = replace(config, demo=replace(ingestion.demo, seed=ingestion.demo.seed + 1))
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


def score_extra_sets(model, sets: Mapping[str, pd.DataFrame], *, image_size: int, batch_size: int,
                     threshold: float, sources: Mapping[str, str]) -> list[dict[str, Any]]:
    """One row per set, in the order given: name, source, counts, and ROC AUC, accuracy at
    threshold, EER and average precision of the model's P(fake).

    threshold should be the one the evaluate stage fixed on the validation split, so accuracy is
    what a user of the deployed model would see. A set holding one class gets accuracy only: its
    ranking metrics are None, and its note says why.
    """
    missing = [name for name in sets if name not in sources]
    if missing:
        raise ValueError(f"no source given for extra set(s) {missing}")
    rows = []
    for name, frame in sets.items():
        check_set_name(name)
        labels = frame["label"].astype(int).to_numpy()
        dataset = build_dataset(frame["path"].astype(str).tolist(), labels.tolist(), image_size, batch_size)
        probs = np.asarray(model.predict(dataset, verbose=0), dtype=np.float64).reshape(-1)
        if probs.size != labels.size:
            raise ModelError(f"extra set {name!r}: {probs.size} predictions for {labels.size} images")
        if not np.isfinite(probs).all() or (probs < 0).any() or (probs > 1).any():
            raise ModelError(f"extra set {name!r}: model outputs must be probabilities P(fake) in [0, 1]")
        row = score_row(name, sources[name], labels, probs, threshold)
        rows.append(row)
        logger.info("Extra set %r: accuracy %.4f, ROC AUC %s, EER %s on %d images", name, row["accuracy"],
                    _format(row["roc_auc"]), _format(row["eer"]), row["n"])
    return rows


def score_row(name: str, source: str, labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, Any]:
    """One set's row of the cross-dataset table (see score_extra_sets)."""
    n_fake, n_real = int((labels == FAKE).sum()), int((labels == REAL).sum())
    row: dict[str, Any] = {"name": name, "source": source, "n": int(labels.size), "n_fake": n_fake,
                           "n_real": n_real}
    if n_fake and n_real:
        scores = compute_scores(labels, probs, threshold, CALIBRATION_BINS)
        return {**row, **{key: scores[key] for key in ROW_METRICS}, "note": None}
    present = CLASS_NAMES[FAKE] if n_fake else CLASS_NAMES[REAL]
    accuracy = float((predict_labels(probs, threshold) == labels).mean())
    return {**row, **dict.fromkeys(ROW_METRICS), "accuracy": accuracy,
            "note": f"only {present} images: ROC AUC, EER and average precision need both classes"}


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def write_cross_dataset(rows: Sequence[Mapping[str, Any]], path: Path,
                        reference: Mapping[str, Any] | None) -> Path:
    """Write {"reference": the in-distribution test row (or null), "sets": rows} as JSON, atomically."""
    return write_json_atomic(path, {"reference": dict(reference) if reference is not None else None,
                                    "sets": [dict(row) for row in rows]})
