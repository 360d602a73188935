"""params.schema.json, generated from the params models so that editors complete and check params.yaml.

params.yaml names it on its first line (`# yaml-language-server: $schema=./params.schema.json`), and
a test fails when the committed file no longer matches the models. Regenerate it from the
repository root after changing config/params.py:

    python -m deepfake_detector.config.json_schema
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from deepfake_detector.config.params import Params

SCHEMA_FILE = Path("params.schema.json")
REGENERATE = "python -m deepfake_detector.config.json_schema"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

logger = logging.getLogger(__name__)


def params_schema() -> dict[str, Any]:
    """The JSON Schema of params.yaml: YAML keys (aliases), descriptions and shipped defaults."""
    schema = _without_titles(TypeAdapter(Params).json_schema(by_alias=True))
    return {"$schema": DIALECT, "title": "params.yaml", **schema}


def schema_text() -> str:
    """params_schema() as committed: stable key order, two-space indent, a final newline."""
    return json.dumps(params_schema(), indent=2, ensure_ascii=False) + "\n"


def _without_titles(node: Any) -> Any:
    """Drop pydantic's generated titles ("Batch Size", "TrainParams"): editors show descriptions instead."""
    if isinstance(node, dict):
        return {key: value if key == "default" else _without_titles(value) for key, value in node.items()
                if not (key == "title" and isinstance(value, str))}
    if isinstance(node, list):
        return [_without_titles(item) for item in node]
    return node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=SCHEMA_FILE, help=f"where to write it (default: {SCHEMA_FILE})")
    args = parser.parse_args(argv)
    args.output.write_text(schema_text(), encoding="utf-8")
    logger.info("Wrote %s", args.output)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
