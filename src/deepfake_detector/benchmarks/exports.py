"""Which exported models the export stage left, read from its model card."""
from __future__ import annotations

import json
from pathlib import Path

from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.export_layout import MODEL_CARD_NAME, TFLITE_VARIANTS

RUN_PIPELINE_HINT = "run `dvc repro` (or `make run`) first"


def read_model_card(export_dir: Path) -> dict:
    card_file = Path(export_dir) / MODEL_CARD_NAME
    if not card_file.is_file():
        raise ModelError(f"{card_file}: model card not found; the export stage has not run: {RUN_PIPELINE_HINT}")
    try:
        return json.loads(card_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelError(f"{card_file}: not valid JSON ({error}); {RUN_PIPELINE_HINT} again") from None


def tflite_files(export_dir: Path, card: dict) -> tuple[dict[str, Path], list[dict[str, str]]]:
    """The .tflite file of each variant present, and a note for each known variant that is not.

    A variant listed in the card whose file is missing is skipped with a note rather than
    failing the whole run: the other variants are still worth measuring.
    """
    exports = card.get("exports") or {}
    names = [*TFLITE_VARIANTS, *sorted(k for k in exports if k not in TFLITE_VARIANTS)]
    present: dict[str, Path] = {}
    skipped: list[dict[str, str]] = []
    for name in names:
        entry = exports.get(name)
        file_name = entry.get("file") if isinstance(entry, dict) else None
        if not file_name:
            if name in TFLITE_VARIANTS:
                skipped.append({"variant": name, "reason": "not in the model card"})
            continue
        if not str(file_name).endswith(".tflite"):
            continue  # e.g. the .keras export
        path = Path(export_dir) / file_name
        if path.is_file():
            present[name] = path
        else:
            skipped.append({"variant": name, "reason": f"{file_name} listed in the card but missing"})
    return present, skipped
