"""Which exported models the export stage left, as its model card lists them."""
from __future__ import annotations

from pathlib import Path

from deepfake_detector.contracts.export_layout import TFLITE_VARIANTS
from deepfake_detector.contracts.model_card import ModelCard

RUN_PIPELINE_HINT = "run `dvc repro` (or `make run`) first"


def tflite_files(card: ModelCard) -> tuple[dict[str, Path], list[dict[str, str]]]:
    """The .tflite file of each variant present, and a note for each known variant that is not.

    A variant listed in the card whose file is missing is skipped with a note rather than
    failing the whole run: the other variants are still worth measuring.
    """
    names = [*TFLITE_VARIANTS, *sorted(name for name in card.exports if name not in TFLITE_VARIANTS)]
    present: dict[str, Path] = {}
    skipped: list[dict[str, str]] = []
    for name in names:
        entry = card.exports.get(name)
        if entry is None:
            if name in TFLITE_VARIANTS:
                skipped.append({"variant": name, "reason": "not in the model card"})
            continue
        if not entry.file.endswith(".tflite"):
            continue  # e.g. the .keras export
        path = card.export_dir / entry.file
        if path.is_file():
            present[name] = path
        else:
            skipped.append({"variant": name, "reason": f"{entry.file} listed in the card but missing"})
    return present, skipped
