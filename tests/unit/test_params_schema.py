"""params.schema.json: generated from the params models, committed, named by params.yaml, and current."""
import copy
import json
from pathlib import Path

import pytest
import yaml

from deepfake_detector.config.json_schema import REGENERATE, SCHEMA_FILE, params_schema, schema_text

REPO = Path(__file__).resolve().parents[2]
MODELINE = f"# yaml-language-server: $schema=./{SCHEMA_FILE}"


def shipped_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def test_committed_schema_matches_the_models() -> None:
    committed = (REPO / SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == schema_text(), f"{SCHEMA_FILE} is stale: regenerate it from the repository root: {REGENERATE}"


def test_params_yaml_names_its_schema_on_the_first_line() -> None:
    assert (REPO / "params.yaml").read_text(encoding="utf-8").splitlines()[0] == MODELINE


def test_every_key_has_a_description_for_editors() -> None:
    schema = params_schema()
    undescribed = [f"{name}.{key}" for name, definition in schema["$defs"].items()
                   for key, spec in definition.get("properties", {}).items()
                   if "description" not in spec and "$ref" not in spec]
    assert undescribed == []


def test_shipped_params_satisfy_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(params_schema()).validate(shipped_params())


def test_schema_refuses_what_the_models_refuse() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    params = copy.deepcopy(shipped_params())
    params["train"]["batch_size"] = 0
    params["train"]["epoch"] = 3
    validator = jsonschema.Draft202012Validator(params_schema())
    problems = {tuple(error.path): error.validator for error in validator.iter_errors(params)}
    assert problems == {("train", "batch_size"): "minimum", ("train",): "additionalProperties"}


def test_schema_accepts_yaml_booleans_where_the_models_read_words() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    params = copy.deepcopy(shipped_params())
    params["serve"]["face_detector"] = False  # a bare `off`
    params["train"]["mixed_precision"] = True  # a bare `on`
    jsonschema.Draft202012Validator(params_schema()).validate(params)


def test_schema_is_json_with_the_dialect_it_follows() -> None:
    schema = json.loads((REPO / SCHEMA_FILE).read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {"data", "model", "train", "evaluate", "export", "serve"}
