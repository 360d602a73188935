"""Video-level evaluation: each video's frames aggregated into its P(fake) as serving aggregates them, the rule
and the threshold chosen on the validation videos, the test videos scored at both.

A frame's video comes from the manifest's `video` column (the video's path in the dataset, "" for a still image).
Pure NumPy, pandas and scikit-learn, no TensorFlow.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from deepfake_detector.components.data.datasets import VIDEO_COLUMN
from deepfake_detector.components.evaluation.bootstrap import bootstrap_intervals
from deepfake_detector.components.evaluation.metrics import (
    TIE_TOLERANCE,
    ThresholdStrategy,
    choose_threshold,
    compute_scores,
)
from deepfake_detector.contracts.errors import DataValidationError
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, REAL
from deepfake_detector.contracts.video_aggregation import AGGREGATIONS
from deepfake_detector.video.verdict import aggregate

logger = logging.getLogger(__name__)

CHOSEN_ON = "val videos"  # where the rule and the threshold are chosen, as scores.json and the card say
FRAME_INTERVALS = "by video"  # how frame-level intervals resample when frames come from videos


def frame_videos(rows: pd.DataFrame) -> np.ndarray:
    """The video of each manifest row, "" for a still image (and for every row of a manifest without videos)."""
    if VIDEO_COLUMN not in rows.columns:
        return np.full(len(rows), "", dtype=object)
    return np.asarray([str(value) for value in rows[VIDEO_COLUMN].fillna("")], dtype=object)


def has_videos(manifest: pd.DataFrame) -> bool:
    """Whether any row of the manifest is a frame of a video."""
    return bool((frame_videos(manifest) != "").any())


def check_video_splits(manifest: pd.DataFrame, manifest_file: Path) -> None:
    """Fail before any prediction on a video whose frames carry two labels or lie in two splits (which would leak
    it between them): the frames stage and validate never write one."""
    videos = frame_videos(manifest)
    frames = manifest.assign(**{VIDEO_COLUMN: videos})[videos != ""]
    per_video = frames.groupby(VIDEO_COLUMN).agg(labels=("label", "nunique"), splits=("split", "nunique"))
    for column, what in (("labels", "labels"), ("splits", "splits")):
        broken = per_video.index[per_video[column] > 1].tolist()
        if broken:
            raise DataValidationError(
                f"{manifest_file}: frames of one video carry different {what} ({', '.join(map(str, broken[:5]))}"
                f"{' ...' if len(broken) > 5 else ''}); every frame of a video must share its label and split, as "
                "the frames stage writes them: rerun it")


def missing_video_classes(manifest: pd.DataFrame, splits: Sequence[str]) -> list[str]:
    """What keeps video-level evaluation from running, e.g. "the test split has no real videos": without videos of
    both classes in val and test no rule or threshold can be chosen and no test score means anything. Empty when
    it can run. (A dataset of videos only always can: validate gives every split both classes.)"""
    videos = frame_videos(manifest)
    frames = manifest.assign(**{VIDEO_COLUMN: videos})[videos != ""]
    missing = []
    for split in splits:
        labels = frames[frames["split"] == split].groupby(VIDEO_COLUMN)["label"].first()
        missing += [f"the {split} split has no {CLASS_NAMES[label]} videos" for label in (REAL, FAKE)
                    if not (labels == label).any()]
    return missing


@dataclass(frozen=True)
class SplitVideos:
    """One split's video frames grouped by video, in order of the videos' names: what each rule aggregates."""

    names: tuple[str, ...]
    labels: np.ndarray                      # per video
    frame_probs: tuple[np.ndarray, ...]     # calibrated P(fake) of each video's frames, in manifest order

    @classmethod
    def of(cls, videos: Sequence[str], labels: Sequence[int], probs: Sequence[float]) -> SplitVideos:
        """The videos among one split's rows (still images, video "", are left out); a video's label is its
        frames' (check_video_splits made sure they agree)."""
        videos, labels = np.asarray(videos, dtype=object), np.asarray(labels, dtype=np.int64)
        probs = np.asarray(probs, dtype=np.float64)
        names = sorted({str(video) for video in videos if video != ""})
        members = [np.flatnonzero(videos == name) for name in names]
        return cls(names=tuple(names), labels=np.array([labels[rows[0]] for rows in members], dtype=np.int64),
                   frame_probs=tuple(probs[rows] for rows in members))

    @property
    def frame_counts(self) -> np.ndarray:
        return np.array([frames.size for frames in self.frame_probs], dtype=np.int64)

    def aggregated(self, rule: str) -> np.ndarray:
        """Each video's P(fake) by rule: video/verdict.py's aggregate, the very function serving calls."""
        return np.array([aggregate(frames, rule) for frames in self.frame_probs], dtype=np.float64)


def choose_aggregation(val: SplitVideos) -> tuple[str, dict[str, float]]:
    """The rule with the highest ROC AUC on the validation videos, and every rule's AUC. Ties (within float noise)
    go to the rule listed first in AGGREGATIONS, so mean, the plainest, wins them."""
    aucs = {rule: float(roc_auc_score(val.labels, val.aggregated(rule))) for rule in AGGREGATIONS}
    best = AGGREGATIONS[0]
    for rule in AGGREGATIONS[1:]:
        if aucs[rule] > aucs[best] + TIE_TOLERANCE:
            best = rule
    return best, aucs


def evaluate_videos(val: SplitVideos, test: SplitVideos, *, threshold: ThresholdStrategy, threshold_rule: str,
                    n_bins: int, resamples: int, seed: int) -> dict[str, Any]:
    """scores.json's `video` block: the rule chosen on val (choose_aggregation), a video threshold chosen on val by
    the same strategy as the image threshold (a number in evaluate.threshold is used as is), and the test videos'
    scores at both (compute_scores) with stratified bootstrap intervals that resample whole videos."""
    rule, val_aucs = choose_aggregation(val)
    video_threshold = choose_threshold(val.labels, val.aggregated(rule), threshold)
    test_probs = test.aggregated(rule)
    scores = compute_scores(test.labels, test_probs, video_threshold, n_bins, unit="videos")
    scores.pop("threshold")
    intervals = bootstrap_intervals(test.labels, test_probs, video_threshold, resamples=resamples, seed=seed)
    return {
        "aggregation": rule,
        "aggregation_val_roc_auc": val_aucs,
        "chosen_on": CHOSEN_ON,
        "threshold": float(video_threshold),
        "threshold_rule": threshold_rule,
        "n_val_videos": len(val.names),
        "n_test_videos": len(test.names),
        "frames_per_video": float(np.median(np.concatenate([val.frame_counts, test.frame_counts]))),
        "frame_intervals": FRAME_INTERVALS,
        **scores,
        **intervals,
    }
