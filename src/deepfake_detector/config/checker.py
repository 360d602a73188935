"""Checks a YAML mapping against a config model and words every mistake for the user.

One line per problem, all at once: the file, the dotted key, the value and what was expected
(`params.yaml: train.batch_size: expected an integer >= 1, got 0`), unknown keys with a
did-you-mean, and missing keys: the models carry defaults for code that builds entities, but the
YAML files must spell every key out.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

from annotated_types import Ge, Gt, Le, Lt
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from typing_extensions import is_typeddict

from deepfake_detector.config.fields import Expect, Problem

Model = TypeVar("Model")
Loc = tuple[str | int, ...]

UNKNOWN_KEY_ERRORS = ("extra_forbidden", "unexpected_keyword_argument")
SCALAR_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path"}


def validated(data: Mapping[str, Any], model: type[Model], file_name: str) -> tuple[Model | None, list[str]]:
    """The model built from data, or None and every problem found, each line naming file_name.

    Problems come in the order of the model's keys; a key gets one line, however many of its
    items or union branches failed.
    """
    problems = {f"missing key '{key}'": key for key in _missing_keys(data, model)}
    try:
        result = _adapter(model).validate_python(data)
    except ValidationError as error:
        expectations: set[str] = set()  # keys already described by what they expect
        for entry in error.errors():
            if entry["type"] == "missing":
                continue  # _missing_keys words these, TypedDict keys included
            where, message, is_expectation = _describe(entry, data, model)
            if is_expectation:
                if where in expectations:
                    continue
                expectations.add(where)
            problems.setdefault(message, where)
        result = None
    position = {key: index for index, key in enumerate(dotted_keys(model))}
    ordered = sorted(problems, key=lambda message: _position(problems[message], position))
    return (None if problems else result), [f"{file_name}: {message}" for message in ordered]


def dotted_keys(model: Any, prefix: str = "") -> list[str]:
    """Every key a YAML file may hold for model, dotted (`data.split.train`), in the model's order."""
    keys = []
    for key, annotation in _keys(model).items():
        keys.append(prefix + key)
        if _is_section(annotation):
            keys.extend(dotted_keys(_bare(annotation), f"{prefix}{key}."))
    return keys


@functools.cache
def _adapter(model: type[Model]) -> TypeAdapter[Model]:
    return TypeAdapter(model)


# ---- the model's shape ----------------------------------------------------------------------------

def _split_annotated(annotation: Any) -> tuple[Any, list[Any]]:
    """The bare type and its metadata, constraints given through Field(...) included."""
    metadata: list[Any] = []
    if typing.get_origin(annotation) is Annotated:
        annotation, *extras = typing.get_args(annotation)
        for extra in extras:
            metadata.extend([extra, *extra.metadata] if isinstance(extra, FieldInfo) else [extra])
    return annotation, metadata


def _bare(annotation: Any) -> Any:
    """The type without its Annotated metadata."""
    return _split_annotated(annotation)[0]


def _is_section(annotation: Any) -> bool:
    """Whether a key holds a nested mapping with keys of its own (a model dataclass or a TypedDict)."""
    bare = _bare(annotation)
    return isinstance(bare, type) and (dataclasses.is_dataclass(bare) or is_typeddict(bare))


@functools.cache
def _keys(model: Any) -> dict[str, Any]:
    """{YAML key: annotation} of a model: its fields under their aliases, in order."""
    hints = typing.get_type_hints(model, include_extras=True)
    names = [f.name for f in dataclasses.fields(model)] if dataclasses.is_dataclass(model) else list(hints)
    keys = {}
    for name in names:
        aliases = [m.alias for m in _split_annotated(hints[name])[1] if isinstance(m, FieldInfo) and m.alias]
        keys[aliases[0] if aliases else name] = hints[name]
    return keys


def _missing_keys(data: Any, model: Any, prefix: str = "") -> list[str]:
    if not isinstance(data, Mapping):
        return []  # pydantic words a non-mapping
    missing = []
    for key, annotation in _keys(model).items():
        if key not in data:
            missing.append(prefix + key)
        elif _is_section(annotation):
            missing.extend(_missing_keys(data[key], _bare(annotation), f"{prefix}{key}."))
    return missing


# ---- one error, in words ----------------------------------------------------------------------------

def _position(dotted: str, position: Mapping[str, int]) -> int:
    """Where a key sits in the model; an unknown key sits with its parent."""
    while dotted and dotted not in position:
        dotted = dotted.rpartition(".")[0]
    return position.get(dotted, -1)


def _describe(entry: Mapping[str, Any], data: Mapping[str, Any], model: Any) -> tuple[str, str, bool]:
    """(the dotted key, the problem in words, whether the words are the key's expectation) of one error."""
    loc: Loc = entry["loc"]
    if entry["type"] in UNKNOWN_KEY_ERRORS:
        dotted = ".".join(map(str, loc))
        return dotted, f"unknown key '{dotted}'{_suggestion(dotted, model)}", False
    path, annotation = _key_path(loc, model)
    where = ".".join(path) or "<top level>"
    cause = (entry.get("ctx") or {}).get("error")
    if isinstance(cause, Problem):
        return where, f"{where}{cause.at}: {cause}", False
    value = _value_at(data, path)
    # "got str 'big'" when the value itself has the wrong type; an item's or a branch's type says less.
    shown = _shown(value, entry["type"] if len(loc) == len(path) else "")
    return where, f"{where}: expected {expectation(annotation)}, got {shown}", True


def _key_path(loc: Loc, model: Any) -> tuple[list[str], Any]:
    """The YAML keys an error's location names, and the annotation of the last one.

    The walk stops at the first key that is not a nested mapping: what follows (a list index,
    a union branch) is a detail of that key's value, reported as one problem.
    """
    path: list[str] = []
    annotation, node = model, model
    for part in loc:
        keys = _keys(node) if node is not None else {}
        if not isinstance(part, str) or part not in keys:
            break
        path.append(part)
        annotation = keys[part]
        node = _bare(annotation) if _is_section(annotation) else None
    return path, annotation


def _value_at(data: Any, path: list[str]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def _shown(value: Any, error_type: str) -> str:
    if value is None:
        return "null"
    if error_type.endswith(("_type", "_parsing")) and not isinstance(value, bool):
        return f"{type(value).__name__} {value!r}"
    return repr(value)


def _suggestion(dotted: str, model: Any) -> str:
    match = difflib.get_close_matches(dotted, dotted_keys(model), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def expectation(annotation: Any) -> str:
    """What a key accepts, in words: `an integer >= 1`, `a number in [0.0, 1.0)`, `one of a, b`."""
    bare, metadata = _split_annotated(annotation)
    marks = [m.text for m in metadata if isinstance(m, Expect)]
    if marks:
        return marks[0]
    origin = typing.get_origin(bare)
    if origin in (Union, types.UnionType):
        members = [member for member in typing.get_args(bare) if member is not type(None)]
        nullable = len(members) < len(typing.get_args(bare))
        return " or ".join(map(expectation, members)) + (" (or null)" if nullable else "")
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(bare)))
    if origin in (tuple, list):
        return "a list"
    if _is_section(bare):
        return "a mapping"
    return SCALAR_NAMES.get(bare, getattr(bare, "__name__", str(bare))) + _bounds(metadata)


def _bounds(metadata: list[Any]) -> str:
    low = next((m for m in metadata if isinstance(m, Ge | Gt)), None)
    high = next((m for m in metadata if isinstance(m, Le | Lt)), None)
    if low is not None and high is not None:
        return (f" in {'[' if isinstance(low, Ge) else '('}{_limit(low)}, "
                f"{_limit(high)}{']' if isinstance(high, Le) else ')'}")
    if low is not None:
        return f" {'>=' if isinstance(low, Ge) else '>'} {_limit(low)}"
    if high is not None:
        return f" {'<=' if isinstance(high, Le) else '<'} {_limit(high)}"
    return ""


def _limit(constraint: Ge | Gt | Le | Lt) -> Any:
    for name in ("ge", "gt", "le", "lt"):
        if hasattr(constraint, name):
            return getattr(constraint, name)
    raise TypeError(constraint)
