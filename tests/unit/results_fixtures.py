"""A locked demo-like run for the results-table tests: every output a table reads, written where
config/config.yaml puts it under a temporary root, and a dvc.lock recording their md5s.

Scores, predictions, robustness and cross-dataset rows come from the stages' own metric and writer
functions on made-up P(fake) values, so the files have exactly the shape the pipeline writes.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from deepfake_detector.components.evaluation import cross_dataset
from deepfake_detector.components.evaluation.bootstrap import bootstrap_intervals
from deepfake_detector.components.evaluation.generalization import TrainingSources, summarize_unseen
from deepfake_detector.components.evaluation.metrics import compute_scores, predict_labels
from deepfake_detector.components.evaluation.robustness import robustness_metrics
from deepfake_detector.config import ConfigurationManager
from deepfake_detector.contracts.labels import FAKE, REAL
from deepfake_detector.results.outputs import PipelineOutputs, file_md5, output_files

REPOSITORY = Path(__file__).resolve().parents[2]
THRESHOLD = 0.6644
MISSED_FAKES = 3                 # test fakes scored below THRESHOLD
PER_CLASS = 60                   # test images of each class
FLAGGED_CUE = "file_size"
# Deliberately not mild to harsh for jpeg: the table must sort it.
ROBUSTNESS_AUC = {
    "jpeg": {30: 0.9610, 50: 0.9905, 70: 0.9981, 90: 0.9996},
    "rescale": {0.75: 0.9903, 0.5: 0.5333, 0.25: 0.5450},
    "blur": {0.5: 0.9962, 1.0: 0.5451, 2.0: 0.5372},
}
HISTORY = (  # epoch, phase, loss, auc, val_loss, val_auc, val_accuracy
    (0, "fine_tune", 0.71, 0.52, 0.69, 0.5003, 0.5),
    (1, "fine_tune", 0.42, 0.88, 0.35, 0.9821, 0.93),
    (2, "fine_tune", 0.21, 0.97, 0.12, 0.9994, 0.98),
    (3, "fine_tune", 0.15, 0.99, 0.09, 0.9990, 0.99),
)


def manager(root: Path) -> ConfigurationManager:
    """The repository's config.yaml and params.yaml, with every path under root."""
    return ConfigurationManager(config_path=REPOSITORY / "config" / "config.yaml",
                                params_path=REPOSITORY / "params.yaml", root=root)


def _write_json(path: Path, payload) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _split(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels and P(fake) of one split: reals at or below 0.21, fakes above 0.42 with MISSED_FAKES under THRESHOLD."""
    fakes = np.concatenate([rng.uniform(0.42, THRESHOLD - 0.01, MISSED_FAKES),
                            rng.uniform(THRESHOLD + 0.01, 0.99, PER_CLASS - MISSED_FAKES)])
    reals = rng.uniform(0.01, 0.21, PER_CLASS)
    return np.array([FAKE] * PER_CLASS + [REAL] * PER_CLASS), np.concatenate([fakes, reals])


def write_scores_and_predictions(files: dict[str, Path], bootstrap: int = 200) -> None:
    rng = np.random.default_rng(0)
    val_labels, val_probs = _split(rng)
    labels, probs = _split(rng)
    scores = compute_scores(labels, probs, THRESHOLD, 10)
    scores.update(temperature=1.0, threshold_uncalibrated=THRESHOLD,
                  ece_positive_class_uncalibrated=scores["ece_positive_class"],
                  ece_top_label_uncalibrated=scores["ece_top_label"], log_loss_uncalibrated=scores["log_loss"],
                  total_parameters=2_259_265, n_test=labels.size, n_val=val_labels.size)
    if bootstrap:
        scores.update(bootstrap_intervals(labels, probs, THRESHOLD, resamples=bootstrap, seed=42))
    _write_json(files["scores"], {**scores, "model_sha256": "0" * 64})
    rows = [{"path": f"{split}/{index}.jpg", "label": int(label), "split": split, "p_fake": float(prob),
             "p_fake_uncalibrated": float(prob), "predicted": int(guess)}
            for split, split_labels, split_probs in (("val", val_labels, val_probs), ("test", labels, probs))
            for index, (label, prob, guess) in enumerate(zip(split_labels, split_probs,
                                                             predict_labels(split_probs, THRESHOLD), strict=True))]
    files["predictions"].parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(files["predictions"], index=False)


def write_split_summary(path: Path) -> None:
    counts = {"train": (280, 280), "val": (PER_CLASS, PER_CLASS), "test": (PER_CLASS, PER_CLASS)}
    summary = {split: {"fake": fake, "real": real, "total": fake + real} for split, (fake, real) in counts.items()}
    _write_json(path, {**summary, "total": 800, "quarantined": 0, "duplicate_groups": 0})


def write_history(path: Path) -> None:
    """As Keras' CSVLogger writes it: epoch first, then the logs' keys sorted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "accuracy", "auc", "learning_rate", "loss", "phase", "val_accuracy", "val_auc",
                         "val_loss"])
        for epoch, phase, loss, auc, val_loss, val_auc, val_accuracy in HISTORY:
            writer.writerow([epoch, auc - 0.05, auc, 0.001, loss, phase, val_accuracy, val_auc, val_loss])


def write_robustness(path: Path) -> None:
    rows = [{"perturbation": "none", "severity": None, "roc_auc": 0.9997, "accuracy": 0.975, "eer": 0.0, "n": 120}]
    rows += [{"perturbation": name, "severity": float(severity), "roc_auc": auc, "accuracy": 0.9, "eer": 0.1, "n": 120}
             for name, by_severity in ROBUSTNESS_AUC.items() for severity, auc in by_severity.items()]
    _write_json(path, robustness_metrics(pd.DataFrame(rows)))


# Extra sets of the made-up run, trained on `demo` (family a): name -> source.
CROSS_DATASET_SOURCES = {"demo-style-b": "demo:b", "demo-bilinear": "demo:bilinear", "demo-a": "demo:a",
                         "phone-photos": "photos/"}


def write_cross_dataset_results(path: Path, bootstrap: int) -> None:
    rng = np.random.default_rng(1)
    labels = np.array([FAKE] * 400 + [REAL] * 400)
    predictions = {"demo-style-b": (labels, rng.uniform(0, 1, labels.size)),
                   "phone-photos": (np.full(50, REAL), rng.uniform(0, 0.5, 50)),
                   "demo-bilinear": (labels, np.clip(rng.normal(0.45 + 0.3 * labels, 0.2), 0, 1)),
                   "demo-a": (labels, np.clip(rng.normal(0.2 + 0.6 * labels, 0.1), 0, 1))}
    predictions = {name: predictions[name] for name in CROSS_DATASET_SOURCES}
    rows = cross_dataset.score_extra_sets(predictions, threshold=THRESHOLD, sources=CROSS_DATASET_SOURCES,
                                          training=TrainingSources(("demo",), "a"), resamples=bootstrap, seed=0)
    summary = summarize_unseen(rows, predictions, THRESHOLD, resamples=bootstrap, seed=0)
    reference = {"name": cross_dataset.REFERENCE_NAME, "source": "demo", "n": 120, "roc_auc": 0.9997,
                 "roc_auc_ci_low": 0.9989, "roc_auc_ci_high": 1.0, "accuracy": 0.975, "eer": 0.0,
                 "average_precision": 0.9997}
    cross_dataset.write_cross_dataset(rows, path, reference, summary)


def write_shortcut_audit(path: Path) -> None:
    aucs = {"file_size": 0.92, "jpeg_quality": 0.5113, "dimensions": 0.5, "exif": 0.5, "color_statistics": 0.5342,
            "border": 0.4875, "thumbnail": 0.5208, "model_on_thumbnail": 0.5391}
    cues = {name: {"auc": auc, "description": f"{name} alone", "flagged": auc >= 0.8} for name, auc in aucs.items()}
    _write_json(path, {"warn_auc": 0.8, "n_images": 560, "n_fake": 280, "n_real": 280, "folds": 5, "cues": cues,
                       "flagged": [name for name, cue in cues.items() if cue["flagged"]]})


def write_export_metrics(path: Path) -> None:
    sizes = {"keras": ("model.keras", 9_400_000, 0.0), "float32": ("model.tflite", 8_900_000, 3.1e-7),
             "float16": ("model_fp16.tflite", 4_500_000, 2.2e-4),
             "int8_dynamic": ("model_int8.tflite", 2_600_000, 4.1e-3),
             "int8_full": ("model_int8_full.tflite", 2_700_000, 1.9e-2)}
    _write_json(path, {variant: {"file": file, "description": variant, "bytes": size, "sha256": "0" * 64,
                                 "max_abs_diff": diff, "mean_abs_diff": diff / 10, "decision_agreement": 1.0 - diff,
                                 "accuracy": 0.975, "roc_auc": 0.9997 - diff / 10, "eer": 0.0, "auc_drop": diff / 10}
                       for variant, (file, size, diff) in sizes.items()})


def write_lock(root: Path) -> Path:
    """dvc.lock recording the md5 of every output present under root, grouped by stage as DVC does."""
    stages: dict[str, dict] = {}
    for output in output_files(manager(root)).values():
        path = root / output.path
        if path.is_file():
            stage = stages.setdefault(output.stage, {"cmd": f"python -m deepfake_detector.pipeline.{output.stage}",
                                                     "outs": []})
            stage["outs"].append({"path": output.path, "hash": "md5", "md5": file_md5(path),
                                  "size": path.stat().st_size})
    lock = root / "dvc.lock"
    lock.write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}, sort_keys=False), encoding="utf-8")
    return lock


def write_locked_run(root: Path, bootstrap: int = 200) -> PipelineOutputs:
    """Every output, then dvc.lock; the outputs as the results tables see them."""
    files = {key: root / output.path for key, output in output_files(manager(root)).items()}
    write_scores_and_predictions(files, bootstrap)
    write_split_summary(files["split_summary"])
    write_history(files["history"])
    write_robustness(files["robustness"])
    write_cross_dataset_results(files["cross_dataset"], bootstrap)
    write_shortcut_audit(files["shortcut_audit"])
    write_export_metrics(files["export_metrics"])
    return PipelineOutputs.from_manager(manager(root), write_lock(root))


def readme_with_markers(path: Path, names: list[str]) -> Path:
    """A README with prose around an empty block per table name."""
    parts = ["# project\n\nSome prose.\n"]
    parts += [f"\n<!-- results:{name}:start -->\ntyped by hand: 0.99\n<!-- results:{name}:end -->\n\nMore prose.\n"
              for name in names]
    path.write_text("".join(parts), encoding="utf-8")
    return path
