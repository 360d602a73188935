"""The ablation grid (config/ablation.yaml): named axes of named levels, each level a set of params.yaml
overrides, and the rows to run: every combination of levels, or the explicit subset `rows:` lists.

The whole file is checked when loaded, every problem in one error, so a typo fails before hours of
training rather than at the row that uses it: keys must exist in params.yaml, each row's params must
pass params.yaml's own checks, and stages must be dvc.yaml's.
"""
from __future__ import annotations

import copy
import difflib
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_detector.config.checker import validated
from deepfake_detector.config.configuration import read_yaml
from deepfake_detector.config.params import Params
from deepfake_detector.contracts.errors import ConfigError

# Enough for every table column; robustness, shortcut_audit and report are left out to save time.
DEFAULT_STAGES = ("cross_dataset", "export")
TOP_LEVEL_KEYS = ("axes", "stages", "rows")
# Level names make row names, which become DVC experiment names (git refs) and file names.
LEVEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
ROW_SEPARATOR = "_"


@dataclass(frozen=True)
class Row:
    """One combination of levels: what the ablation table shows on one line."""

    name: str                       # the levels joined by "_", in axis order; also the DVC experiment name
    levels: Mapping[str, str]       # axis -> level
    overrides: Mapping[str, Any]    # dotted params.yaml key -> value


@dataclass(frozen=True)
class Grid:
    source: Path
    axes: tuple[str, ...]
    rows: tuple[Row, ...]
    stages: tuple[str, ...]         # the dvc.yaml stages each row's experiment reproduces

    @property
    def baseline(self) -> Row:
        """The first row: latency ratios are taken against it."""
        return self.rows[0]

    def select(self, names: Sequence[str] | None) -> tuple[Row, ...]:
        """The named rows in grid order (all rows when names is empty); an unknown name is an error."""
        if not names:
            return self.rows
        known = [row.name for row in self.rows]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ConfigError("\n".join(f"{self.source}: no row {name!r}{_hint(name, known)}; rows: {', '.join(known)}"
                                        for name in unknown))
        return tuple(row for row in self.rows if row.name in names)


def load_grid(path: Path, params: Mapping[str, Any], stage_names: Sequence[str]) -> Grid:
    """The grid in path, checked against params (params.yaml as read) and stage_names (dvc.yaml's)."""
    path = Path(path)
    data = read_yaml(path)
    problems = [f"{path}: unknown key {key!r}{_hint(str(key), TOP_LEVEL_KEYS)}; expected {', '.join(TOP_LEVEL_KEYS)}"
                for key in data if key not in TOP_LEVEL_KEYS]
    stages = _stages(data.get("stages", list(DEFAULT_STAGES)), stage_names, path, problems)
    axes = _axes(data.get("axes"), params, path, problems)
    if problems:
        raise ConfigError("\n".join(problems))
    combinations = _combinations(data.get("rows"), axes, path, problems)
    rows = [_row(levels, axes) for levels in combinations]
    for row in rows:
        _, row_problems = validated(with_overrides(params, row.overrides), Params, "params.yaml")
        problems += [f"{path}: row {row.name}: {problem}" for problem in row_problems]
    if problems:
        raise ConfigError("\n".join(problems))
    return Grid(source=path, axes=tuple(axes), rows=tuple(rows), stages=stages)


def with_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of params with each dotted key set to its value: the params.yaml a row runs with."""
    result = copy.deepcopy(dict(params))
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = result
        for key in parents:
            node = node[key]
        node[leaf] = copy.deepcopy(value)
    return result


def dotted_keys(mapping: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every key of a nested mapping, dotted: `train`, `train.augment`, `train.augment.flip`, ..."""
    keys = []
    for key, value in mapping.items():
        keys.append(f"{prefix}{key}")
        if isinstance(value, Mapping):
            keys += dotted_keys(value, f"{prefix}{key}.")
    return keys


def _hint(value: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _stages(value: Any, stage_names: Sequence[str], path: Path, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(stage, str) for stage in value):
        problems.append(f"{path}: stages: expected a non-empty list of dvc.yaml stage names, got {value!r}")
        return ()
    problems += [f"{path}: stages: unknown stage {stage!r}{_hint(stage, stage_names)}; dvc.yaml has "
                 f"{', '.join(stage_names)}" for stage in value if stage not in stage_names]
    return tuple(value)


def _axes(value: Any, params: Mapping[str, Any], path: Path,
          problems: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """axis -> level -> {dotted key: value}, nested mappings flattened to the leaves they set."""
    if not isinstance(value, Mapping) or not value:
        problems.append(f"{path}: axes: expected a mapping of axis names to their levels, got {value!r}")
        return {}
    known_keys = dotted_keys(params)
    axes: dict[str, dict[str, dict[str, Any]]] = {}
    for axis, levels in value.items():
        if not isinstance(levels, Mapping) or not levels:
            problems.append(f"{path}: axes.{axis}: expected a mapping of level names to params overrides, "
                            f"got {levels!r}")
            continue
        axes[str(axis)] = {}
        for level, overrides in levels.items():
            where = f"{path}: axes.{axis}.{level}"
            if not LEVEL_NAME.match(str(level)):
                problems.append(f"{where}: a level name is letters, digits and '-' (it names DVC experiments "
                                "and files)")
            if not isinstance(overrides, Mapping):
                problems.append(f"{where}: expected a mapping of dotted params.yaml keys to values, got {overrides!r}")
                continue
            flat = _leaves(overrides)
            problems += [f"{where}: {key!r} is not a key of params.yaml{_hint(key, known_keys)}"
                         for key in flat if key not in known_keys]
            axes[str(axis)][str(level)] = flat
    setters: dict[str, set[str]] = {}
    for axis, levels in axes.items():
        for key in {key for overrides in levels.values() for key in overrides}:
            setters.setdefault(key, set()).add(axis)
    problems += [f"{path}: axes {', '.join(sorted(owners))} all set {key!r}: a key belongs to one axis"
                 for key, owners in setters.items() if len(owners) > 1]
    return axes


def _leaves(overrides: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train.augment": {"flip": false}} -> {"train.augment.flip": false}: a mapping value sets only the
    keys it names, as `dvc exp run -S` merges it."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, Mapping) and value:
            flat.update(_leaves(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _combinations(value: Any, axes: Mapping[str, Mapping[str, Any]], path: Path,
                  problems: list[str]) -> list[dict[str, str]]:
    """Each row's level per axis: the cartesian product, or the rows listed (each naming every axis once)."""
    if value is None:
        return [dict(zip(axes, levels, strict=True)) for levels in itertools.product(*axes.values())]
    if not isinstance(value, list) or not value:
        problems.append(f"{path}: rows: expected a non-empty list of {{axis: level}} mappings, got {value!r}")
        return []
    rows, seen = [], set()
    for index, entry in enumerate(value):
        where = f"{path}: rows[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: expected a mapping of every axis ({', '.join(axes)}) to a level, got {entry!r}")
            continue
        entry = {str(axis): str(level) for axis, level in entry.items()}
        row_problems = [f"{where}: unknown axis {axis!r}{_hint(axis, list(axes))}" for axis in entry
                        if axis not in axes]
        row_problems += [f"{where}: no level for axis {axis!r}" for axis in axes if axis not in entry]
        row_problems += [f"{where}: axis {axis!r} has no level {level!r}{_hint(level, list(axes[axis]))}; "
                         f"levels: {', '.join(axes[axis])}" for axis, level in entry.items()
                         if axis in axes and level not in axes[axis]]
        levels = tuple(entry.get(axis) for axis in axes)
        if not row_problems and levels in seen:
            row_problems.append(f"{where}: the same row as an earlier one")
        seen.add(levels)
        problems += row_problems
        if not row_problems:
            rows.append({axis: entry[axis] for axis in axes})
    return rows


def _row(levels: Mapping[str, str], axes: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Row:
    overrides = {key: value for axis, level in levels.items() for key, value in axes[axis][level].items()}
    return Row(name=ROW_SEPARATOR.join(levels.values()), levels=dict(levels), overrides=overrides)
