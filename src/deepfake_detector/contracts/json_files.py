"""Reading a JSON object another stage wrote, with errors that name the file and the stage to rerun."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from deepfake_detector.contracts.errors import ModelError


def read_json_object(path: Path, made_by: str) -> dict[str, Any]:
    """The JSON object in path; ModelError naming path and the stage `made_by` when absent or malformed."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: not found; run the {made_by} stage first") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ModelError(f"{path}: unreadable ({error}); rerun the {made_by} stage") from None
    if not isinstance(payload, dict):
        raise ModelError(f"{path}: expected a JSON object, got {type(payload).__name__}; rerun the {made_by} stage")
    return payload


def number(payload: dict[str, Any], key: str, path: Path, made_by: str, default: float | None = None) -> float:
    """payload[key] as a finite float (default when absent and a default is given)."""
    value = payload.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(f"{path}: '{key}' must be a finite number, got {value!r}; rerun the {made_by} stage")
    return float(value)
