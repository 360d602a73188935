"""Safe extraction of zip and tar archives into one folder.

Every member is checked before it is written: absolute paths, `..`, links, devices and FIFOs are
refused, and the member count and the bytes actually written are capped, so a hostile archive can
neither escape the target folder nor fill the disk.
"""
from __future__ import annotations

import logging
import os
import re
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm import tqdm

from deepfake_detector.contracts.errors import IngestionError, UnsafeArchiveError

logger = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
CHUNK = 1 << 20
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
# Errors the archive libraries raise on truncated or corrupt input.
_CORRUPT_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, NotImplementedError)


@dataclass(frozen=True)
class ExtractionLimits:
    max_members: int
    max_bytes: int


def has_archive_suffix(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def extract_archive(archive: Path, target_dir: Path, limits: ExtractionLimits) -> None:
    """Unpack archive (zip or tar, optionally gzipped; told apart by content) into target_dir.

    Raises UnsafeArchiveError naming the offending member, or IngestionError for a corrupt or
    unsupported file. On failure, files already written stay in target_dir: the caller owns it and
    discards it whole (it is a staging folder).
    """
    logger.info("Extracting %s", archive.name)
    try:
        if zipfile.is_zipfile(archive):
            writer = _extract_zip(archive, target_dir, limits)
        elif tarfile.is_tarfile(archive):
            writer = _extract_tar(archive, target_dir, limits)
        else:
            raise IngestionError(f"{archive.name}: not a readable zip or tar archive (damaged, truncated "
                                 f"or another format; expected one of {', '.join(ARCHIVE_SUFFIXES)})")
    except _CORRUPT_ERRORS as error:
        raise IngestionError(f"{archive.name}: corrupt or unsupported archive: {error}") from None
    except OSError as error:
        raise IngestionError(f"{archive.name}: could not be extracted: {error}") from None
    logger.info("Extracted %d members (%.1f MiB) from %s", writer.n_members, writer.n_bytes / 2**20,
                archive.name)


def safe_member_path(archive: Path, name: str) -> PurePosixPath | None:
    """The member's path relative to the target folder, or None for the archive's root itself.

    Backslashes count as separators, as Windows tools write them.
    """
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or _WINDOWS_DRIVE.match(normalized):
        raise _refusal(archive, name, "has an absolute path")
    parts = [part for part in normalized.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _refusal(archive, name, "contains '..' and would land outside the extraction folder")
    return PurePosixPath(*parts) if parts else None


def _refusal(archive: Path, member: str, problem: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"{archive.name}: member {member!r} {problem}; refusing to extract")


class _Writer:
    """Writes members under one root, counting members and the bytes actually written."""

    def __init__(self, archive: Path, target_dir: Path, limits: ExtractionLimits) -> None:
        self.archive = archive
        self.root = Path(os.path.realpath(target_dir))
        self.limits = limits
        self.n_members = 0
        self.n_bytes = 0

    def count_member(self) -> None:
        self.n_members += 1
        if self.n_members > self.limits.max_members:
            raise UnsafeArchiveError(
                f"{self.archive.name}: more than {self.limits.max_members} members "
                "(params.yaml: data.max_archive_members); refusing to extract")

    def check_total(self, n_bytes: int) -> None:
        if n_bytes > self.limits.max_bytes:
            raise UnsafeArchiveError(
                f"{self.archive.name}: unpacks to more than {self.limits.max_bytes / 2**20:g} MiB "
                "(params.yaml: data.max_extracted_mb); refusing to extract")

    def destination(self, relative: PurePosixPath) -> Path:
        path = self.root.joinpath(*relative.parts)
        # Names are already sanitized and nothing here creates links; this is the last guard.
        if not os.path.realpath(path).startswith(str(self.root) + os.sep):
            raise _refusal(self.archive, str(relative), "resolves outside the extraction folder")
        return path

    def make_dir(self, relative: PurePosixPath) -> None:
        self.destination(relative).mkdir(parents=True, exist_ok=True)

    def write_file(self, relative: PurePosixPath, stream: BinaryIO, declared_size: int) -> None:
        path = self.destination(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with stream, open(path, "wb") as out:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                written += len(chunk)
                if written > declared_size:
                    raise _refusal(self.archive, str(relative),
                                   f"holds more data than its header declares ({declared_size} bytes)")
                self.check_total(self.n_bytes + written)
                out.write(chunk)
        self.n_bytes += written


def _zip_member_kind(info: zipfile.ZipInfo) -> str | None:
    """What a zip member is beyond file or folder (link, device...), from its Unix mode."""
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def _extract_zip(archive: Path, target_dir: Path, limits: ExtractionLimits) -> _Writer:
    writer = _Writer(archive, target_dir, limits)
    with zipfile.ZipFile(archive) as handle:
        members = handle.infolist()
        # The central directory lists everything up front, so refuse before writing a byte.
        planned = []
        for info in members:
            writer.count_member()
            relative = safe_member_path(archive, info.filename)
            kind = _zip_member_kind(info)
            if kind is not None:
                raise _refusal(archive, info.filename, f"is {kind}")
            if info.flag_bits & 0x1:
                raise IngestionError(f"{archive.name}: member {info.filename!r} is encrypted; "
                                     "unpack the archive yourself and point data.source at the folder")
            planned.append((info, relative))
        writer.check_total(sum(info.file_size for info in members))
        for info, relative in tqdm(planned, desc=f"Extracting {archive.name}", unit="file", leave=False):
            if relative is None:
                continue
            if info.is_dir():
                writer.make_dir(relative)
            else:
                writer.write_file(relative, handle.open(info), info.file_size)
    return writer


def _extract_tar(archive: Path, target_dir: Path, limits: ExtractionLimits) -> _Writer:
    writer = _Writer(archive, target_dir, limits)
    declared = 0
    with tarfile.open(archive, "r:*") as handle:
        # Iterating (not getmembers) reads one header at a time, so the member cap bites early.
        for member in tqdm(handle, desc=f"Extracting {archive.name}", unit="file", leave=False):
            writer.count_member()
            relative = safe_member_path(archive, member.name)
            if member.issym() or member.islnk():
                kind = "a symbolic link" if member.issym() else "a hard link"
                raise _refusal(archive, member.name, f"is {kind} (to {member.linkname!r})")
            if member.ischr() or member.isblk():
                raise _refusal(archive, member.name, "is a device")
            if member.isfifo():
                raise _refusal(archive, member.name, "is a FIFO")
            if not (member.isreg() or member.isdir()):
                raise _refusal(archive, member.name, f"has an unsupported type {member.type!r}")
            if member.isreg():
                declared += member.size
                writer.check_total(declared)
            if relative is None:
                continue
            if member.isdir():
                writer.make_dir(relative)
            else:
                writer.write_file(relative, handle.extractfile(member), member.size)
    return writer
