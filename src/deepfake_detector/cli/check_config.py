"""`deepfake-detector check-config`: validate config.yaml and params.yaml and show what every component receives."""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import enum
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

EXIT_INVALID = 2

DESCRIPTION = ("Validate config/config.yaml and params.yaml, as every stage does before it starts, and print each "
               "configuration entity: the typed values a component receives. Paths are shown relative to the root. "
               "Exit 0 when valid, 2 (with every problem, file and dotted key) when not.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("entities", nargs="*", metavar="ENTITY",
                        help="show only these entities, e.g. training serving (default: every one)")


def run(args: argparse.Namespace) -> int:
    from deepfake_detector.config import ConfigurationManager
    from deepfake_detector.contracts.errors import ConfigError

    root = Path(args.root).resolve()
    try:
        entities = ConfigurationManager(root=root).all_entities()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    unknown = [name for name in args.entities if name not in entities]
    if unknown:
        for name in unknown:
            print(f"deepfake-detector check-config: error: unknown entity {name!r}{_suggestion(name, entities)}",
                  file=sys.stderr)
        print(f"entities: {', '.join(entities)}", file=sys.stderr)
        return EXIT_INVALID
    print(f"root: {root}")
    for name in args.entities or entities:
        print(render_entity(name, entities[name], root))
    print("configuration OK")
    return 0


def _suggestion(name: str, entities: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(entities), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class EntityDumper(yaml.SafeDumper):
    """YAML with nested mappings indented and lists of plain values on one line (`variants: [keras, float32]`)."""

    def represent_list(self, items: list) -> yaml.Node:
        is_flat = not any(isinstance(item, (dict, list)) for item in items)
        return self.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=is_flat)


EntityDumper.add_representer(list, EntityDumper.represent_list)


def render_entity(name: str, entity: Any, root: Path) -> str:
    """The entity as YAML under its name, fields in their declared order."""
    return yaml.dump({name: plain(entity, root)}, Dumper=EntityDumper, sort_keys=False, default_flow_style=False,
                     width=120, allow_unicode=True)


def plain(value: Any, root: Path) -> Any:
    """value as YAML-ready builtins: entities (dataclasses or pydantic models) and mappings become dicts in
    field order, sequences lists, enums their values, and paths inside root relative to it."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name), root) for field in dataclasses.fields(value)}
    if hasattr(type(value), "model_fields"):  # a pydantic model
        return {name: plain(getattr(value, name), root) for name in type(value).model_fields}
    if isinstance(value, Mapping):
        return {str(key): plain(item, root) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(plain(item, root) for item in value)
    if isinstance(value, (list, tuple)):
        return [plain(item, root) for item in value]
    if isinstance(value, enum.Enum):
        return plain(value.value, root)
    if isinstance(value, Path):
        return str(value.relative_to(root)) if value.is_relative_to(root) else str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
