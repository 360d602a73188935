"""Leave-one-generator-out reporting: which extra sets come from a source the model trained on, and
how it does, with joint bootstrap intervals, on the ones it never saw."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import numpy as np

from deepfake_detector.components.evaluation.bootstrap import mean_intervals
from deepfake_detector.contracts.demo_sources import demo_family

SUMMARY_METRICS = ("roc_auc", "accuracy")


@dataclass(frozen=True)
class TrainingSources:
    """The sources a model trained on (data.source, one or a list, resolved as extra sets' sources are)."""

    sources: tuple[str, ...]
    demo_style: str        # the family a bare `demo` draws (data.demo.style)

    def includes(self, source: str) -> bool:
        """Whether source names one of them: `demo` and `demo:<data.demo.style>` are the same source, and
        a folder is the same whether written as a path or a file:// URL."""
        return source_key(source, self.demo_style) in {source_key(entry, self.demo_style) for entry in self.sources}


def source_key(source: str, demo_style: str) -> str:
    """source in one spelling per dataset, for comparison only: demo families (stills or clips) and Kaggle handles
    lower-cased, local paths (and file:// URLs) absolute and normalized, other URLs as written."""
    text = source.strip()
    lowered = text.lower()
    family = demo_family(text)
    if family is not None:  # clips carry the same family's trace as stills
        return f"demo:{family or demo_style.strip().lower()}"
    if lowered.startswith("kaggle:"):
        return f"kaggle:{lowered[len('kaggle:'):].strip().strip('/')}"
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() != "file":
            return text
        text = url2pathname(unquote(parts.path))
    return str(Path(text).expanduser().resolve())


def summarize_unseen(rows: Sequence[Mapping[str, Any]], predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
                     threshold: float, *, resamples: int, seed: int) -> dict[str, Any]:
    """The summary over the rows not seen in training that hold both classes (cross_dataset.py documents
    its keys): mean and lowest ROC AUC and accuracy, the means with 95 % joint bootstrap intervals.

    predictions maps each such row's name to its (labels, P(fake)); intervals are None with
    resamples=0, and every number is None when no row qualifies.
    """
    unseen = [row for row in rows if not row["seen"] and row["roc_auc"] is not None]
    intervals = mean_intervals([predictions[row["name"]] for row in unseen], threshold, resamples=resamples,
                               seed=seed, metrics=SUMMARY_METRICS)
    summary: dict[str, Any] = {"n_sets": len(unseen), "sets": [row["name"] for row in unseen]}
    for metric in SUMMARY_METRICS:
        lowest = min(unseen, key=lambda row: row[metric], default=None)
        summary.update({
            f"mean_{metric}": math.fsum(row[metric] for row in unseen) / len(unseen) if unseen else None,
            f"mean_{metric}_ci_low": intervals.get(f"{metric}_ci_low"),
            f"mean_{metric}_ci_high": intervals.get(f"{metric}_ci_high"),
            f"min_{metric}": None if lowest is None else lowest[metric],
            f"min_{metric}_set": None if lowest is None else lowest["name"],
        })
    return summary

