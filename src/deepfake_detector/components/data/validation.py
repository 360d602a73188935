"""The validate stage: decode every indexed image, quarantine the unusable ones, group duplicates
and write the split manifest that training and evaluation read.

The index is the frames stage's: still images, and the frames of each video with the video's path in
a `video` column. The frames of one video form one group with every duplicate of any of them, so a
video never straddles two splits; the manifest keeps the column. A row with a `problem` (a video that
could not be decoded) is quarantined with that reason."""
from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from deepfake_detector.components.data.datasets import MANIFEST_COLUMNS, SPLITS, VIDEO_COLUMN
from deepfake_detector.components.data.duplicates import DisjointSets, group_duplicates
from deepfake_detector.components.data.image_checks import ImageCheck, inspect_image
from deepfake_detector.components.data.layouts import SOURCE_COLUMN
from deepfake_detector.components.data.splitting import (
    check_every_split_has_both_classes,
    keep_groups_together,
    split_by_group,
)
from deepfake_detector.config.entities import DataValidationConfig
from deepfake_detector.contracts.errors import DataValidationError
from deepfake_detector.contracts.frames_index import PROBLEM_COLUMN
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, LABELS_BY_NAME, REAL
from deepfake_detector.utils.files import atomic_path, write_json_atomic

logger = logging.getLogger(__name__)

INDEX_COLUMNS = ("path", "class_name", "split")
LABEL_CONFLICT = "label conflict"
MAX_DECODE_THREADS = 8  # Pillow and hashlib release the GIL, so threads decode in parallel


@dataclass(frozen=True)
class ValidationResult:
    manifest_file: Path
    quarantine_file: Path
    split_summary_file: Path
    n_good: int
    n_bad: int
    counts: Mapping[str, Mapping[str, int]]  # split -> {"fake": n, "real": n, "total": n}


class DataValidation:
    """Turns ingestion's index into a manifest of usable, labeled, leak-free split images.

    Nothing is dropped silently: every file left out is listed with its reason in the
    quarantine file, which is written even when validation then fails.
    """

    def __init__(self, config: DataValidationConfig) -> None:
        self.config = config

    def run(self) -> ValidationResult:
        config = self.config
        index = self._read_index()
        problems = {path: problem for path, problem in zip(index["path"], index[PROBLEM_COLUMN], strict=True)
                    if problem}  # videos the frames stage could not decode
        checked = index[~index["path"].isin(problems)].copy()
        checks = self._inspect(checked)
        checked["sha256"] = [check.sha256 for check in checks]
        checked["phash"] = [check.phash for check in checks]
        problems.update({path: check.problem for path, check in zip(checked["path"], checks, strict=True)
                         if not check.is_usable})

        usable = checked[[check.is_usable for check in checks]].copy()
        usable["group"] = group_duplicates(usable["sha256"].tolist(), usable["phash"].tolist(),
                                           config.near_duplicate_hamming)
        has_videos = bool((index[VIDEO_COLUMN] != "").any())
        if has_videos:
            usable["group"] = group_by_video(usable["group"].tolist(), usable[VIDEO_COLUMN].tolist())
        problems.update(self._label_conflicts(usable))
        kept = usable[~usable["path"].isin(problems)].copy()

        self._write_quarantine(len(index), problems)
        self._check_enough_good(index, problems, kept)
        kept["split"] = self._assign_splits(kept, presplit=(index["split"] != "").all(),
                                            partly_split=(index["split"] != "").any())

        is_multi_source = SOURCE_COLUMN in kept.columns
        columns = [*MANIFEST_COLUMNS, SOURCE_COLUMN] if is_multi_source else list(MANIFEST_COLUMNS)
        columns += [VIDEO_COLUMN] if has_videos else []
        manifest = kept.loc[:, columns].sort_values("path", kind="stable")
        with atomic_path(config.manifest_file) as tmp:
            manifest.to_csv(tmp, index=False, lineterminator="\n")
        counts = {split: self._class_counts(kept[kept["split"] == split]) for split in SPLITS}
        duplicate_groups = int((kept["group"].value_counts() > 1).sum())
        per_source = {"per_source": self._source_counts(kept)} if is_multi_source else {}
        videos = {"videos": self._video_counts(kept)} if has_videos else {}
        write_json_atomic(config.split_summary_file, {
            **counts, "total": len(kept), "quarantined": len(problems), "duplicate_groups": duplicate_groups,
            **per_source, **videos,
        })
        logger.info("Validated %d images: %s; %d quarantined, %d duplicate groups kept together",
                    len(index), ", ".join(f"{s} {counts[s]['total']}" for s in SPLITS), len(problems),
                    duplicate_groups)
        return ValidationResult(
            manifest_file=config.manifest_file,
            quarantine_file=config.quarantine_file,
            split_summary_file=config.split_summary_file,
            n_good=len(kept),
            n_bad=len(problems),
            counts=counts,
        )

    def _read_index(self) -> pd.DataFrame:
        """The index as path, class_name, split (normalized) and label, unknown labels refused."""
        index_file = self.config.index_file
        try:
            index = pd.read_csv(index_file, dtype=str, keep_default_na=False)
        except FileNotFoundError:
            raise DataValidationError(f"{index_file}: index not found; run the ingest and frames stages first"
                                      ) from None
        except pd.errors.EmptyDataError:
            raise DataValidationError(f"{index_file}: the index is empty") from None
        missing = [column for column in INDEX_COLUMNS[:2] if column not in index.columns]
        if missing:
            raise DataValidationError(f"{index_file}: missing columns {missing} (expected {list(INDEX_COLUMNS)})")
        if index.empty:
            raise DataValidationError(f"{index_file}: the index lists no images")
        for column in ("split", VIDEO_COLUMN, PROBLEM_COLUMN):
            if column not in index.columns:
                index[column] = ""
        has_source = SOURCE_COLUMN in index.columns
        index = index.loc[:, [*INDEX_COLUMNS, *([SOURCE_COLUMN] if has_source else []), VIDEO_COLUMN, PROBLEM_COLUMN]]
        if has_source and (index[SOURCE_COLUMN].str.strip() == "").any():
            first = index.loc[index[SOURCE_COLUMN].str.strip() == "", "path"].iloc[0]
            raise DataValidationError(f"{index_file}: the {SOURCE_COLUMN} column is empty for some images, "
                                      f"e.g. {first}; run the ingest stage again")
        index["split"] = index["split"].str.strip().str.lower()
        unknown_splits = sorted(set(index["split"]) - set(SPLITS) - {""})
        if unknown_splits:
            raise DataValidationError(f"{index_file}: unknown split names {unknown_splits} "
                                      f"(expected {', '.join(SPLITS)} or empty)")
        repeated = index["path"][index["path"].duplicated()]
        if not repeated.empty:
            raise DataValidationError(f"{index_file}: {repeated.nunique()} path(s) listed more than once, "
                                      f"e.g. {repeated.iloc[0]}")
        lookup = {name: LABELS_BY_NAME[cls] for cls, names in self.config.class_names.items()
                  for name in (cls, *names)}
        names = index["class_name"].str.strip().str.lower()
        index["label"] = names.map(lookup)
        unknown = index[index["label"].isna()]
        if not unknown.empty:
            examples = unknown.drop_duplicates("class_name").head(5)
            listed = "; ".join(f"'{row.class_name}' (e.g. {row.path})" for row in examples.itertuples())
            accepted = ", ".join(f"{cls}: {list(names)}" for cls, names in self.config.class_names.items())
            raise DataValidationError(f"{index_file}: unknown class label(s) {listed}; params.yaml "
                                      f"data.class_names accepts {accepted}")
        index["label"] = index["label"].astype(int)
        return index

    def _inspect(self, index: pd.DataFrame) -> list[ImageCheck]:
        """Decode every image in full, in parallel threads, results in index order."""
        paths = [self.config.dataset_dir / path for path in index["path"]]
        inspect = partial(inspect_image, min_size=self.config.min_image_size)
        workers = max(1, min(MAX_DECODE_THREADS, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(tqdm(pool.map(inspect, paths), total=len(paths), desc="checking images",
                             unit="img", leave=False))

    @staticmethod
    def _label_conflicts(usable: pd.DataFrame) -> dict[str, str]:
        """Members of groups holding both labels: the same picture cannot be fake and real.

        One exception: a group made only of video frames, none of whose files is itself labeled both ways, is a
        manipulated video and the footage it was made from (FaceForensics++'s fakes keep their original's
        background, so their frames are near-duplicates). Both are kept, and split_by_group puts the group in one
        split, so neither the footage nor the face leaks across splits."""
        labels_per_group = usable.groupby("group")["label"].transform("nunique")
        labels_per_file = usable.groupby("sha256")["label"].transform("nunique")
        is_frame = usable[VIDEO_COLUMN] != ""
        only_frames = is_frame.groupby(usable["group"]).transform("all")
        derived_video = only_frames & (labels_per_group > 1) & (labels_per_file == 1)
        derived_video = derived_video.groupby(usable["group"]).transform("all")
        if derived_video.any():
            logger.info("%d group(s) join a fake video and a real one made of the same footage; each is kept whole "
                        "in one split", usable.loc[derived_video, "group"].nunique())
        conflicted = usable[(labels_per_group > 1) & ~derived_video]
        return {row.path: f"{LABEL_CONFLICT}: the same or a near-identical image is labeled both fake "
                          f"and real (group {row.group})" for row in conflicted.itertuples()}

    def _write_quarantine(self, n_checked: int, problems: Mapping[str, str]) -> None:
        files = [{"path": path, "reason": problems[path]} for path in sorted(problems)]
        write_json_atomic(self.config.quarantine_file, {"n_checked": n_checked, "n_bad": len(problems),
                                                        "files": files})
        reasons = Counter(reason.split(":")[0] for reason in problems.values())
        for reason, count in sorted(reasons.items()):
            example = next(path for path in sorted(problems) if problems[path].startswith(reason))
            logger.warning("%d file(s) quarantined: %s (e.g. %s); see %s", count, reason, example,
                           self.config.quarantine_file)

    def _check_enough_good(self, index: pd.DataFrame, problems: Mapping[str, str], kept: pd.DataFrame) -> None:
        """data.max_bad_fraction counts files: a still image, or a video, lost whole (every frame of it)."""
        config = self.config
        units = file_of(index)
        lost = set(units) - set(file_of(kept))
        n_checked = units.nunique()
        if len(lost) > config.max_bad_fraction * n_checked:
            unit_of = dict(zip(index["path"], units, strict=True))
            reasons = Counter(reason.split(":")[0] for reason in
                              {unit_of[path]: reason for path, reason in problems.items()}.values())
            breakdown = ", ".join(f"{count} {reason}" for reason, count in reasons.most_common())
            raise DataValidationError(
                f"{len(lost)} of {n_checked} files ({len(lost) / n_checked:.1%}) are unusable, more "
                f"than params.yaml data.max_bad_fraction ({config.max_bad_fraction:g}): {breakdown}. "
                f"The list with reasons is in {config.quarantine_file}")
        for label in (FAKE, REAL):
            if not (kept["label"] == label).any():
                raise DataValidationError(
                    f"no usable '{CLASS_NAMES[label]}' images remain after quarantine; the list of "
                    f"quarantined files is in {config.quarantine_file}")

    def _assign_splits(self, kept: pd.DataFrame, presplit: bool, partly_split: bool) -> list[str]:
        config = self.config
        if presplit:
            splits, moved = keep_groups_together(kept["split"].tolist(), kept["group"].tolist())
            if moved:
                logger.warning("%d image(s) moved to an earlier split so that duplicates of one picture "
                               "share a split (the dataset's own split leaked them)", moved)
            check_every_split_has_both_classes(kept["label"].to_numpy(), splits)
            return splits
        if partly_split:
            logger.warning("Only some images in %s have a split; ignoring it and splitting all of them by "
                           "params.yaml data.split", config.index_file)
        sources = kept[SOURCE_COLUMN].tolist() if SOURCE_COLUMN in kept.columns else None
        return split_by_group(kept["label"].tolist(), kept["group"].tolist(), config.split, config.seed, sources)

    @classmethod
    def _source_counts(cls, kept: pd.DataFrame) -> dict[str, dict[str, dict[str, int]]]:
        """{source: {split: class counts}}: what each data.source entry gives each split."""
        return {source: {split: cls._class_counts(rows[rows["split"] == split]) for split in SPLITS}
                for source, rows in kept.groupby(SOURCE_COLUMN, sort=True)}

    @classmethod
    def _video_counts(cls, kept: pd.DataFrame) -> dict[str, dict[str, int]]:
        """{split: class counts} of videos (a still counts as its own): what video-level metrics are made of."""
        units = kept.assign(unit=file_of(kept)).drop_duplicates("unit")
        return {split: cls._class_counts(units[units["split"] == split]) for split in SPLITS}

    @staticmethod
    def _class_counts(rows: pd.DataFrame) -> dict[str, int]:
        fake, real = int((rows["label"] == FAKE).sum()), int((rows["label"] == REAL).sum())
        return {"fake": fake, "real": real, "total": fake + real}


def file_of(rows: pd.DataFrame) -> pd.Series:
    """The dataset file each row came from: a frame's video, else the image itself."""
    return rows[VIDEO_COLUMN].where(rows[VIDEO_COLUMN] != "", rows["path"])


def group_by_video(groups: list[str], videos: list[str]) -> list[str]:
    """Each row's group joined with every other group holding a frame of its video (transitively), so that a
    video's frames, and any duplicate of one of them, share a split. A joined group is named by its smallest
    member; a still (empty video) keeps its own."""
    names = sorted(set(groups))
    position = {name: at for at, name in enumerate(names)}
    forest = DisjointSets(len(names))
    first_group_of: dict[str, str] = {}
    for group, video in zip(groups, videos, strict=True):
        if video:
            forest.union(position[first_group_of.setdefault(video, group)], position[group])
    smallest: dict[int, str] = {}
    for name in names:  # sorted: the first name met for a root is its smallest
        smallest.setdefault(forest.find(position[name]), name)
    return [smallest[forest.find(position[group])] for group in groups]
