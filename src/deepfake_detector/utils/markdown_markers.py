"""Generated blocks in hand-written Markdown: the text between two HTML-comment marker lines.

A generator owns what lies between `<!-- NAME:start -->` and `<!-- NAME:end -->` and nothing else, so
prose around a table stays the author's. The marker lines themselves are kept.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from deepfake_detector.utils.files import write_text_atomic


class MarkerError(ValueError):
    """A marker line is missing, repeated, or the end comes before the start."""


@dataclass(frozen=True)
class Markers:
    start: str
    end: str

    @classmethod
    def named(cls, name: str) -> Markers:
        return cls(f"<!-- {name}:start -->", f"<!-- {name}:end -->")


def find_block(lines: list[str], markers: Markers, source: str | Path) -> tuple[int, int]:
    """Indices of the start and end marker lines; MarkerError naming source unless each is there
    exactly once and in order (so a generator can check a file before doing any work)."""
    stripped = [line.strip() for line in lines]
    if stripped.count(markers.start) != 1 or stripped.count(markers.end) != 1:
        raise MarkerError(f"{source}: needs exactly one line '{markers.start}' and one line '{markers.end}' "
                          "around the generated block")
    start, end = stripped.index(markers.start), stripped.index(markers.end)
    if end < start:
        raise MarkerError(f"{source}: '{markers.end}' comes before '{markers.start}'")
    return start, end


def read_block(text: str, markers: Markers, source: str | Path) -> str:
    """What lies between the marker lines, exactly as written."""
    lines = text.splitlines(keepends=True)
    start, end = find_block(lines, markers, source)
    return "".join(lines[start + 1:end])


def replace_block(text: str, markers: Markers, body: str, source: str | Path) -> str:
    """text with the block replaced by body, framed by one blank line on each side."""
    lines = text.splitlines(keepends=True)
    start, end = find_block(lines, markers, source)
    return "".join(lines[:start + 1]) + "\n" + body.strip("\n") + "\n\n" + "".join(lines[end:])


def write_blocks(path: Path, bodies: dict[Markers, str]) -> Path:
    """Replace each block of the file at once (all markers checked before anything is written),
    atomically and keeping the file's permissions."""
    path = Path(path)
    if not path.is_file():
        raise MarkerError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    for markers, body in bodies.items():
        text = replace_block(text, markers, body, path)
    mode = path.stat().st_mode
    write_text_atomic(path, text)
    os.chmod(path, stat.S_IMODE(mode))
    return path
