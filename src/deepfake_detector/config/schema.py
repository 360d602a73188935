"""Declarative schema of config.yaml and params.yaml, and the checker that turns mistakes into
one readable error naming the file, the dotted key, the value and what was expected."""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deepfake_detector.contracts.errors import ConfigError


@dataclass(frozen=True)
class Field:
    """One leaf: accepted Python types, optional bounds or choices, and whether null is allowed."""

    types: tuple[type, ...]
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    check: Callable[[Any], str | None] | None = None  # returns a problem, or None when fine
    description: str = ""

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None if self.nullable else f"expected {self.describe()}, got null"
        if value in self.choices and not isinstance(value, bool):
            return None
        # bool is an int in Python; a YAML `true` where a number is expected is a mistake.
        if isinstance(value, bool) and bool not in self.types:
            return f"expected {self.describe()}, got {value!r}"
        if not isinstance(value, self.types):
            return f"expected {self.describe()}, got {type(value).__name__} {value!r}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and (
                value < self.minimum or (self.exclusive_minimum and value == self.minimum)
            ):
                return f"expected {self.describe()}, got {value!r}"
            if self.maximum is not None and (
                value > self.maximum or (self.exclusive_maximum and value == self.maximum)
            ):
                return f"expected {self.describe()}, got {value!r}"
        if self.check is not None:
            return self.check(value)
        return None

    def describe(self) -> str:
        if self.description:
            return self.description
        names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
                 list: "a list", dict: "a mapping"}
        types = [t for t in self.types if not (t is int and float in self.types)]  # "a number" covers both
        kinds = " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))
        if self.minimum is not None and self.maximum is not None:
            low = "(" if self.exclusive_minimum else "["
            high = ")" if self.exclusive_maximum else "]"
            kinds += f" in {low}{self.minimum}, {self.maximum}{high}"
        elif self.minimum is not None:
            kinds += f" {'>' if self.exclusive_minimum else '>='} {self.minimum}"
        elif self.maximum is not None:
            kinds += f" {'<' if self.exclusive_maximum else '<='} {self.maximum}"
        if self.choices:
            kinds += " or one of " + ", ".join(repr(c) for c in self.choices)
        if self.nullable:
            kinds += " (or null)"
        return kinds


def integer(minimum: int | None = None, maximum: int | None = None, **kw: Any) -> Field:
    return Field((int,), minimum=minimum, maximum=maximum, **kw)


def number(minimum: float | None = None, maximum: float | None = None, **kw: Any) -> Field:
    return Field((int, float), minimum=minimum, maximum=maximum, **kw)


def fraction(**kw: Any) -> Field:
    return Field((int, float), minimum=0.0, maximum=1.0, **kw)


def text(**kw: Any) -> Field:
    return Field((str,), **kw)


def flag() -> Field:
    return Field((bool,))


def _is_sha256(value: Any) -> str | None:
    ok = isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value)
    return None if ok else f"expected a 64-character hex SHA-256, got {value!r}"


def _is_name_list(value: Any) -> str | None:
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return None
    return f"expected a non-empty list of names, got {value!r}"


EXPORT_VARIANTS = ("keras", "float32", "float16", "int8_dynamic", "int8_full")


def _one_of(value: Any, choices: tuple[str, ...]) -> str | None:
    return None if value in choices else f"expected one of {', '.join(choices)}, got {value!r}"


DEMO_STYLES = ("a", "b")
EXTRA_SET_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _is_extra_set_list(value: Any) -> str | None:
    """evaluate.extra_sets: a list of {name, source} with unique, folder-safe names."""
    if not isinstance(value, list):
        return f"expected a list of {{name, source}} mappings, got {value!r}"
    names = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict) or set(entry) != {"name", "source"}:
            return f"entry {index}: expected a mapping with exactly 'name' and 'source', got {entry!r}"
        name, source = entry["name"], entry["source"]
        if not isinstance(name, str) or not EXTRA_SET_NAME.match(name):
            return f"entry {index}: name must be letters, digits, '.', '_' or '-', got {name!r}"
        if not isinstance(source, str) or not source.strip():
            return f"entry {index} ({name}): source must be a non-empty string, got {source!r}"
        names.append(name)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    return f"names listed twice: {duplicated}" if duplicated else None


def severities(minimum: float, maximum: float, exclusive_minimum: bool = False) -> Field:
    """A list of perturbation severities within bounds (may be empty to skip that perturbation)."""
    def check(value: Any) -> str | None:
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                 and (minimum < v if exclusive_minimum else minimum <= v) and v <= maximum for v in value)
        if ok and len(set(value)) == len(value):
            return None
        low = "(" if exclusive_minimum else "["
        return f"expected a list of distinct numbers in {low}{minimum}, {maximum}], got {value!r}"
    return Field((list,), check=check, description=f"a list of numbers in [{minimum}, {maximum}]")


def _is_variant_list(value: Any) -> str | None:
    if not value or not all(isinstance(v, str) for v in value):
        return f"expected a non-empty list of {', '.join(EXPORT_VARIANTS)}, got {value!r}"
    unknown = [v for v in value if v not in EXPORT_VARIANTS]
    if unknown:
        return f"unknown variants {unknown}: expected some of {', '.join(EXPORT_VARIANTS)}"
    if len(set(value)) != len(value):
        return f"variants listed twice in {value!r}"
    return None


Schema = Mapping[str, "Field | Schema"]

CONFIG_SCHEMA: Schema = {
    "artifacts_root": text(),
    "logs_dir": text(),
    "data_ingestion": {
        "root_dir": text(), "dataset_dir": text(), "index_file": text(), "report_file": text(),
    },
    "data_validation": {
        "root_dir": text(), "manifest_file": text(), "quarantine_file": text(),
        "split_summary_file": text(),
    },
    "prepare_model": {"root_dir": text(), "model_file": text(), "summary_file": text()},
    "training": {
        "root_dir": text(), "model_file": text(), "history_file": text(),
        "checkpoint_file": text(), "backup_dir": text(), "run_file": text(),
    },
    "evaluation": {
        "root_dir": text(), "scores_file": text(), "predictions_file": text(), "plots_dir": text(),
    },
    "robustness": {"root_dir": text(), "metrics_file": text(), "plot_file": text(), "png_file": text()},
    "cross_dataset": {"root_dir": text(), "results_file": text()},
    "shortcut_audit": {"results_file": text()},
    "report": {"root_dir": text(), "html_file": text()},
    "export": {"root_dir": text(), "metrics_file": text()},
    "serving": {"model_file": text(), "export_dir": text(), "scores_file": text()},
    "tracking": {"tracking_uri": text(), "experiment_name": text(), "registered_model_name": text()},
}

PARAMS_SCHEMA: Schema = {
    "data": {
        "source": text(),
        "sha256": Field((str,), nullable=True, check=_is_sha256),
        "class_names": {
            "fake": Field((list,), check=_is_name_list),
            "real": Field((list,), check=_is_name_list),
        },
        "max_archive_members": integer(1),
        "max_extracted_mb": number(0, exclusive_minimum=True),
        "download_timeout_s": number(0, exclusive_minimum=True),
        "demo": {
            "seed": integer(0),
            "images_per_class": integer(2),
            "image_size": integer(32, 2048),
            "fingerprint_strength": number(0, 1),
            "sensor_noise": number(0, 1),
            "jpeg_quality_min": integer(1, 100),
            "jpeg_quality_max": integer(1, 100),
            "style": text(check=lambda v: _one_of(v, DEMO_STYLES)),
        },
        "min_image_size": integer(1),
        "max_bad_fraction": fraction(),
        "near_duplicate_hamming": integer(0, 64),
        "split": {
            "train": fraction(exclusive_minimum=True),
            "val": fraction(exclusive_minimum=True),
            "test": fraction(exclusive_minimum=True),
        },
        "seed": integer(0),
    },
    "model": {
        "alpha": Field((int, float), choices=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
                       description="one of 0.35, 0.5, 0.75, 1.0, 1.3, 1.4 (MobileNetV2 widths)",
                       check=lambda v: None if v in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
                       else f"expected one of 0.35, 0.5, 0.75, 1.0, 1.3, 1.4, got {v!r}"),
        "image_size": integer(32, 1024),
        "weights": text(),
        "dropout": fraction(exclusive_maximum=True),
        "batch_norm_momentum": fraction(exclusive_minimum=True, exclusive_maximum=True),
        "freeze_batch_norm": Field((bool, str), description="true, false or 'auto'",
                                   check=lambda v: None if isinstance(v, bool) or v == "auto"
                                   else f"expected true, false or 'auto', got {v!r}"),
        "seed": integer(0),
    },
    "train": {
        "batch_size": integer(1),
        "head_epochs": integer(0),
        "head_learning_rate": number(0, exclusive_minimum=True),
        "fine_tune_epochs": integer(0),
        "fine_tune_layers": Field((int, str), description="a layer count >= 0 or 'all'",
                                  check=lambda v: None if v == "all" or (isinstance(v, int) and v >= 0)
                                  else f"expected a layer count >= 0 or 'all', got {v!r}"),
        "fine_tune_learning_rate": number(0, exclusive_minimum=True),
        "early_stopping_patience": integer(0),
        "reduce_lr_patience": integer(0),
        "reduce_lr_factor": fraction(exclusive_minimum=True, exclusive_maximum=True),
        "class_weights": flag(),
        "cache": flag(),
        "seed": integer(0),
        "strategy": text(check=lambda v: _one_of(v, ("auto", "mirrored", "multi_worker", "one_device"))),
        "learning_rate_scaling": text(check=lambda v: _one_of(v, ("linear", "none"))),
        "mixed_precision": Field((str, bool), description="'auto', 'on' or 'off'",
                                 check=lambda v: None if isinstance(v, bool) else _one_of(v, ("auto", "on", "off"))),
        "augment": {
            "enabled": flag(),
            "flip": flag(),
            "rotation": fraction(),
            "zoom": fraction(),
            "contrast": fraction(),
            "brightness": fraction(),
            "jpeg_probability": fraction(),
            "jpeg_quality_min": integer(1, 100),
            "jpeg_quality_max": integer(1, 100),
            "blur_probability": fraction(),
            "rescale_probability": fraction(),
            "rescale_min_factor": fraction(exclusive_minimum=True),
        },
    },
    "evaluate": {
        "threshold": Field((int, float, str), description="a number in (0, 1), 'eer' or 'youden'",
                           check=lambda v: None if v in ("eer", "youden")
                           or (not isinstance(v, str) and 0 < v < 1)
                           else f"expected a number in (0, 1), 'eer' or 'youden', got {v!r}"),
        "batch_size": integer(1),
        "calibration_bins": integer(2, 100),
        "seed": integer(0),
        "bootstrap": integer(0),
        "calibrate": flag(),
        "extra_sets": Field((list,), description="a list of {name, source} mappings", check=_is_extra_set_list),
        "shortcut_warn_auc": number(0.5, 1),
        "robustness": {
            "jpeg": severities(1, 100),
            "rescale": severities(0, 1, exclusive_minimum=True),
            "blur": severities(0, 20, exclusive_minimum=True),
            "noise": severities(0, 255, exclusive_minimum=True),
            "crop": severities(0, 1, exclusive_minimum=True),
            "brightness_contrast": severities(0, 0.9, exclusive_minimum=True),
        },
    },
    "export": {
        "variants": Field((list,), description=f"a non-empty list of {', '.join(EXPORT_VARIANTS)}",
                          check=_is_variant_list),
        "calibration_images": integer(1),
        "max_float32_diff": number(0, exclusive_minimum=True),
        "max_auc_drop": fraction(),
    },
    "serve": {
        "backend": text(choices=("auto", "tflite", "keras"), check=lambda v: _one_of(v, ("auto", "tflite", "keras"))),
        "variant": text(check=lambda v: _one_of(v, EXPORT_VARIANTS[1:])),
        "num_threads": Field((int,), minimum=1, nullable=True),
        "threshold": Field((int, float), minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True,
                           nullable=True),
        # YAML reads a bare `off` as false: accept it as "off".
        "face_detector": Field((str, bool), description="'off' or 'haar'",
                               check=lambda v: None if v is False else _one_of(v, ("off", "haar"))),
        "face_policy": text(check=lambda v: _one_of(v, ("largest", "all"))),
        "face_min_size": integer(8),
        "face_margin": number(0, 1),
        "max_request_mb": number(0, exclusive_minimum=True),
        "max_image_pixels": integer(1),
        "max_images_per_request": integer(1),
        "cors_origins": Field((list,), description="a list of origins such as 'https://example.org'",
                              check=lambda v: None if all(isinstance(o, str) for o in v)
                              else f"expected a list of origin strings, got {v!r}"),
        "training_enabled": flag(),
    },
}


def _dotted_keys(schema: Schema, prefix: str = "") -> list[str]:
    keys = []
    for key, spec in schema.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(spec, Mapping):
            keys.extend(_dotted_keys(spec, dotted + "."))
    return keys


def _suggest(dotted: str, schema_root: Schema) -> str:
    candidates = _dotted_keys(schema_root)
    match = difflib.get_close_matches(dotted, candidates, n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def check_against_schema(data: Any, schema: Schema, file_name: str) -> None:
    """Raise one ConfigError listing every unknown, missing or invalid key in data."""
    problems: list[str] = []

    def walk(node: Any, spec: Schema, prefix: str) -> None:
        if not isinstance(node, Mapping):
            where = prefix.rstrip(".") or "<top level>"
            problems.append(f"{file_name}: {where}: expected a mapping, got {node!r}")
            return
        for key in node:
            if key not in spec:
                dotted = f"{prefix}{key}"
                problems.append(f"{file_name}: unknown key '{dotted}'{_suggest(dotted, schema)}")
        for key, sub in spec.items():
            dotted = f"{prefix}{key}"
            if key not in node:
                problems.append(f"{file_name}: missing key '{dotted}'")
            elif isinstance(sub, Mapping):
                walk(node[key], sub, dotted + ".")
            else:
                problem = sub.problem(node[key])
                if problem:
                    problems.append(f"{file_name}: {dotted}: {problem}")

    walk(data, schema, "")
    if problems:
        raise ConfigError("\n".join(problems))
