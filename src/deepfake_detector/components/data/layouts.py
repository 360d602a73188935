"""Recognize how a dataset tree is organized and list one record per candidate image or video file.

Three layouts are understood, under any number of single-folder wrappers: HardFake's data.csv
beside its label folders, trees already split into train/val(id)/test, and plain class folders
(files at any depth below a class folder belong to it: FaceForensics++'s `original/` and method folders
are class folders once data.class_names maps them).
"""
from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from deepfake_detector.contracts.errors import IngestionError

logger = logging.getLogger(__name__)

CLASS_FOLDERS = "class_folders"
HARDFAKE_CSV = "hardfake_csv"
PRESPLIT = "presplit"

# index.csv and the manifest name each image's data.source entry here, when data.source is a list.
SOURCE_COLUMN = "source"
LABEL_CSV_NAME = "data.csv"
LABEL_CSV_COLUMNS = ("images_id", "label")
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
# Operating-system litter that is never part of a dataset (dotfiles are skipped as well).
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx"})
# Extensions tried when a data.csv id has none; ".jpg" first, as HardFake ships.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
# A data.csv id with one of these is a video, named as written (the frames stage tells videos by content).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi")
EXAMPLES_SHOWN = 5


@dataclass(frozen=True)
class Record:
    path: str  # posix, relative to the dataset folder
    class_name: str  # "fake"/"real", or the raw lower-cased label when it maps to neither
    split: str  # "train"/"val"/"test" for pre-split trees, else ""


@dataclass(frozen=True)
class DatasetListing:
    layout: str
    base: str  # where the layout was found, relative to the dataset folder ("" for the top)
    records: tuple[Record, ...]
    unlisted: tuple[str, ...]  # files on disk that data.csv does not mention
    warnings: tuple[str, ...]

    @property
    def n_files(self) -> int:
        return len(self.records)

    @property
    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(record.class_name for record in self.records).items()))


def is_ignored(name: str) -> bool:
    return name.startswith(".") or name.lower() in IGNORED_NAMES


def list_dataset(root: Path, class_names: Mapping[str, tuple[str, ...]]) -> DatasetListing:
    """Detect the layout of the tree at root and list its candidate image files, sorted by path.

    Raises IngestionError for an empty tree or one that matches no layout, showing what was found.
    """
    if next(_files_under(root, progress=False), None) is None:
        raise IngestionError("the dataset is empty: no files were found in it")
    lookup = _alias_lookup(class_names)
    base = find_dataset_base(root, lookup)
    folders = _child_folders(base)
    label_csv = next((path for path in _visible_children(base)
                      if path.is_file() and path.name.lower() == LABEL_CSV_NAME), None)
    if label_csv is not None:
        listing = _list_label_csv(root, base, label_csv, folders, lookup)
    elif any(f.name.lower() in SPLIT_FOLDERS and _has_class_folder(f, lookup) for f in folders):
        listing = _list_presplit(root, base, folders, lookup)
    elif any(f.name.lower() in lookup for f in folders):
        listing = _list_class_folders(root, base, folders, lookup)
    else:
        raise IngestionError(
            "unrecognized dataset layout: expected class folders (named in params.yaml "
            f"data.class_names: {_known_names(class_names)}), a {LABEL_CSV_NAME} with columns "
            f"{','.join(LABEL_CSV_COLUMNS)} beside its label folders, or train/val/test folders "
            f"holding class folders. Found:\n{describe_tree(root)}")
    for warning in listing.warnings:
        logger.warning(warning)
    return listing


def find_dataset_base(root: Path, lookup: Mapping[str, str]) -> Path:
    """Descend through folders that only wrap one other folder (as many archives do).

    A lone class or split folder is content, not a wrapper, so the descent stops there.
    """
    base = root
    while True:
        children = _visible_children(base)
        if len(children) != 1 or not children[0].is_dir():
            return base
        name = children[0].name.lower()
        if name in lookup or name in SPLIT_FOLDERS:
            return base
        base = children[0]


def describe_tree(root: Path, depth: int = 3, limit: int = 20) -> str:
    """A short indented listing of the top of a tree, for error messages."""
    lines: list[str] = []

    def visit(folder: Path, level: int) -> None:
        for child in _visible_children(folder):
            if len(lines) >= limit:
                return
            indent = "  " * (level + 1)
            if child.is_dir():
                entries = _visible_children(child)
                n_files = sum(1 for entry in entries if entry.is_file())
                lines.append(f"{indent}{child.name}/  ({n_files} files, {len(entries) - n_files} folders)")
                if level + 1 < depth:
                    visit(child, level + 1)
            else:
                lines.append(f"{indent}{child.name}")

    visit(root, 0)
    if len(lines) >= limit:
        lines.append("  ...")
    return "\n".join(lines) if lines else "  (nothing)"


def _alias_lookup(class_names: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    return {alias.lower(): class_name for class_name, aliases in class_names.items() for alias in aliases}


def _known_names(class_names: Mapping[str, tuple[str, ...]]) -> str:
    return "; ".join(f"{name}: {', '.join(aliases)}" for name, aliases in class_names.items())


def _visible_children(folder: Path) -> list[Path]:
    return sorted((child for child in folder.iterdir() if not is_ignored(child.name)), key=lambda p: p.name)


def _child_folders(folder: Path) -> list[Path]:
    return [child for child in _visible_children(folder) if child.is_dir()]


def _has_class_folder(folder: Path, lookup: Mapping[str, str]) -> bool:
    return any(child.name.lower() in lookup for child in _child_folders(folder))


def _files_under(folder: Path, progress: bool = True) -> Iterator[Path]:
    """Every visible regular file below folder, in a stable order."""
    with tqdm(desc=f"Scanning {folder.name}", unit="file", leave=False, disable=not progress) as bar:
        for current, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not is_ignored(d))
            for name in sorted(files):
                path = Path(current, name)
                if not is_ignored(name) and path.is_file():
                    bar.update(1)
                    yield path


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _base_name(base: Path, root: Path) -> str:
    return "" if base == root else _relative(base, root)


def _loose_files_warning(folder: Path, root: Path, where: str) -> list[str]:
    loose = [_relative(child, root) for child in _visible_children(folder) if child.is_file()]
    if not loose:
        return []
    return [f"{len(loose)} file(s) {where} were left out: {_examples(loose)}"]


def _examples(items: list[str]) -> str:
    shown = ", ".join(items[:EXAMPLES_SHOWN])
    return shown + (f" and {len(items) - EXAMPLES_SHOWN} more" if len(items) > EXAMPLES_SHOWN else "")


def _list_class_folders(root: Path, base: Path, folders: list[Path],
                        lookup: Mapping[str, str]) -> DatasetListing:
    records = [Record(_relative(path, root), lookup.get(folder.name.lower(), folder.name.lower()), "")
               for folder in folders for path in _files_under(folder)]
    warnings = _loose_files_warning(base, root, "beside the class folders")
    return DatasetListing(CLASS_FOLDERS, _base_name(base, root),
                          tuple(sorted(records, key=lambda r: r.path)), (), tuple(warnings))


def _list_presplit(root: Path, base: Path, folders: list[Path], lookup: Mapping[str, str]) -> DatasetListing:
    records: list[Record] = []
    warnings = _loose_files_warning(base, root, "beside the split folders")
    others = [folder.name for folder in folders if folder.name.lower() not in SPLIT_FOLDERS]
    if others:
        warnings.append(f"folder(s) beside the split folders were left out: {_examples(others)}")
    for split_folder in folders:
        split = SPLIT_FOLDERS.get(split_folder.name.lower())
        if split is None:
            continue
        warnings += _loose_files_warning(split_folder, root, f"directly in {split_folder.name}/")
        for class_folder in _child_folders(split_folder):
            class_name = lookup.get(class_folder.name.lower(), class_folder.name.lower())
            records += [Record(_relative(path, root), class_name, split)
                        for path in _files_under(class_folder)]
    return DatasetListing(PRESPLIT, _base_name(base, root),
                          tuple(sorted(records, key=lambda r: r.path)), (), tuple(warnings))


def _read_label_csv(label_csv: Path) -> list[tuple[int, str, str]]:
    """(line number, image id, label) for each row; header names are matched case-insensitively."""
    try:
        with open(label_csv, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [name.strip().lower() for name in next(reader, [])]
            missing = [column for column in LABEL_CSV_COLUMNS if column not in header]
            if missing:
                raise IngestionError(f"{label_csv.name}: expected columns {','.join(LABEL_CSV_COLUMNS)}, "
                                     f"found {','.join(header) or 'none'}")
            id_at, label_at = (header.index(column) for column in LABEL_CSV_COLUMNS)
            rows = []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                cells = row + [""] * (len(header) - len(row))
                rows.append((reader.line_num, cells[id_at].strip(), cells[label_at].strip()))
            return rows
    except (UnicodeDecodeError, csv.Error) as error:
        raise IngestionError(f"{label_csv.name}: not a readable UTF-8 CSV file: {error}") from None


def _list_label_csv(root: Path, base: Path, label_csv: Path, folders: list[Path],
                    lookup: Mapping[str, str]) -> DatasetListing:
    """data.csv is authoritative: one record per row, whether or not its file exists."""
    folder_by_name = {folder.name.lower(): folder for folder in folders}
    on_disk = {_relative(path, root) for folder in folders for path in _files_under(folder)}
    by_stem: dict[tuple[str, str], str] = {}
    for relative in on_disk:
        pure = PurePosixPath(relative)
        by_stem.setdefault((pure.parent.as_posix(), pure.stem), relative)

    records: list[Record] = []
    seen: set[str] = set()
    duplicates: list[str] = []
    for line, image_id, label in _read_label_csv(label_csv):
        if not image_id or image_id in (".", "..") or "/" in image_id or "\\" in image_id:
            raise IngestionError(f"{label_csv.name} line {line}: images_id {image_id!r} is not a file name")
        raw_label = label.lower()
        class_name = lookup.get(raw_label, raw_label)
        folder = folder_by_name.get(raw_label) or next(
            (f for f in folders if lookup.get(f.name.lower()) == class_name), None)
        if folder is not None:
            folder_path = _relative(folder, root)
        else:
            # No folder for this label: the row's file is missing; name it where it would be.
            is_plain_name = label not in ("", ".", "..") and "/" not in label and "\\" not in label
            folder_path = _relative(base / label if is_plain_name else base, root)
        path = _image_path(folder_path, image_id, on_disk, by_stem)
        if path in seen:
            duplicates.append(path)
            continue
        seen.add(path)
        records.append(Record(path, class_name, ""))

    warnings = []
    if duplicates:
        warnings.append(f"{label_csv.name} lists {len(duplicates)} file(s) more than once; the first row "
                        f"was kept: {_examples(duplicates)}")
    missing = [record.path for record in records if record.path not in on_disk]
    if missing:
        warnings.append(f"{len(missing)} file(s) named in {label_csv.name} are missing; the validate stage "
                        f"will quarantine them: {_examples(missing)}")
    unlisted = sorted(on_disk - seen)
    if unlisted:
        warnings.append(f"{len(unlisted)} file(s) on disk are not in {label_csv.name} and were left out: "
                        f"{_examples(unlisted)}")
    return DatasetListing(HARDFAKE_CSV, _base_name(base, root),
                          tuple(sorted(records, key=lambda r: r.path)), tuple(unlisted), tuple(warnings))


def _image_path(folder: str, image_id: str, on_disk: set[str], by_stem: Mapping[tuple[str, str], str]) -> str:
    """Where a data.csv id lives: as written if it has an image extension, else the file on disk
    with that stem, else `<id>.jpg` (HardFake's ids carry no extension)."""
    prefix = "" if folder == "." else f"{folder}/"
    if PurePosixPath(image_id).suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
        return prefix + image_id
    with_jpg = f"{prefix}{image_id}.jpg"
    if with_jpg in on_disk:
        return with_jpg
    return by_stem.get((folder, image_id), with_jpg)
