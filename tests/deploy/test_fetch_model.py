"""deepfake_detector.deploy.fetch_model against a real MLflow store (SQLite in a temporary folder, no server): the
export of the run behind name@alias arrives verified, and every way it can be wrong is a clear error that leaves
the target folder as it was."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from deepfake_detector.deploy.fetch_model import ModelFetchError, fetch_registered_export, main, verify_export
from deepfake_detector.utils.files import sha256_file

NAME = "detector"


def write_export(folder: Path, tamper: bool = False) -> Path:
    """A stand-in export folder: two model files and a card listing their SHA-256 (one wrong when tamper)."""
    folder.mkdir(parents=True)
    (folder / "model.tflite").write_bytes(b"float32 model")
    (folder / "model_fp16.tflite").write_bytes(b"float16 model")
    exports = {variant: {"file": name, "sha256": sha256_file(folder / name)}
               for variant, name in (("float32", "model.tflite"), ("float16", "model_fp16.tflite"))}
    if tamper:
        exports["float16"]["sha256"] = "0" * 64
    card = {"source": {"file": "model.h5", "sha256": "0" * 64}, "output": {"threshold": 0.5, "temperature": 1.0},
            "exports": exports}
    (folder / "model_card.json").write_text(json.dumps(card))
    (folder / "model_card.md").write_text("# card\n")
    return folder


@dataclass(frozen=True)
class Registry:
    uri: str
    good_export: Path


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    """Model NAME with aliases production (a good export), tampered (a card that lies) and empty (no export)."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("deepfake-detector", artifact_location=(root / "artifacts").as_uri())
    client.create_registered_model(NAME)
    good_export = write_export(root / "good")
    for alias, export in (("production", good_export), ("tampered", write_export(root / "bad", tamper=True)),
                          ("empty", None)):
        run_id = client.create_run(experiment).info.run_id
        if export is not None:
            client.log_artifacts(run_id, str(export), artifact_path="export")
        client.set_terminated(run_id)
        version = client.create_model_version(NAME, source=f"runs:/{run_id}/model", run_id=run_id)
        client.set_registered_model_alias(NAME, alias, version.version)
    return Registry(uri, good_export)


def stale_target(tmp_path: Path) -> Path:
    target = tmp_path / "artifacts" / "export"
    target.mkdir(parents=True)
    (target / "old.tflite").write_bytes(b"previous model")
    return target


def test_the_aliased_versions_export_replaces_the_folder(registry, tmp_path):
    target = stale_target(tmp_path)
    fetched = fetch_registered_export(NAME, "production", target, tracking_uri=registry.uri)
    assert fetched.version == "1" and fetched.files == ("model.tflite", "model_fp16.tflite")
    assert sorted(path.name for path in target.iterdir()) == sorted(path.name for path in
                                                                    registry.good_export.iterdir())
    assert (target / "model.tflite").read_bytes() == b"float32 model"
    assert sorted(path.name for path in target.parent.iterdir()) == ["export"], "staging folders left behind"


def test_an_export_that_differs_from_its_card_is_refused_and_the_folder_kept(registry, tmp_path):
    target = stale_target(tmp_path)
    with pytest.raises(ModelFetchError, match=r"model_fp16\.tflite differs from the SHA-256"):
        fetch_registered_export(NAME, "tampered", target, tracking_uri=registry.uri)
    assert [path.name for path in target.iterdir()] == ["old.tflite"]
    assert sorted(path.name for path in target.parent.iterdir()) == ["export"]


def test_a_run_without_an_export_is_an_error(registry, tmp_path):
    with pytest.raises(ModelFetchError, match=r"has no readable 'export/' artifacts"):
        fetch_registered_export(NAME, "empty", tmp_path / "export", tracking_uri=registry.uri)


def test_an_unknown_alias_names_the_aliases_that_exist(registry, tmp_path):
    with pytest.raises(ModelFetchError, match=r"no alias 'staging'.*empty, production, tampered"):
        fetch_registered_export(NAME, "staging", tmp_path / "export", tracking_uri=registry.uri)


def test_an_unknown_model_is_an_error(registry, tmp_path):
    with pytest.raises(ModelFetchError, match=r"no registered model named 'nobody'"):
        fetch_registered_export("nobody", "production", tmp_path / "export", tracking_uri=registry.uri)


def test_without_a_tracking_uri_nothing_is_guessed(tmp_path):
    with pytest.raises(ModelFetchError, match="MLFLOW_TRACKING_URI"):
        fetch_registered_export(NAME, "production", tmp_path / "export", environ={})


def test_cli_fetches_and_summarizes(registry, tmp_path, capsys):
    target = tmp_path / "export"
    code = main(["--name", NAME, "--alias", "production", "--out", str(target), "--tracking-uri", registry.uri])
    assert code == 0
    assert f"{NAME}@production: version 1" in capsys.readouterr().out
    assert verify_export(target) == ("model.tflite", "model_fp16.tflite")


def test_cli_check_accepts_a_matching_folder_and_refuses_a_changed_one(registry, tmp_path):
    folder = tmp_path / "pulled"
    shutil.copytree(registry.good_export, folder)
    assert main(["--check", str(folder)]) == 0
    (folder / "model.tflite").write_bytes(b"something else")
    assert main(["--check", str(folder)]) == 1
    (folder / "model_card.json").unlink()
    assert main(["--check", str(folder)]) == 1


def test_a_card_naming_a_file_outside_the_folder_is_refused(tmp_path):
    folder = write_export(tmp_path / "export")
    card = json.loads((folder / "model_card.json").read_text())
    card["exports"]["float32"]["file"] = "../elsewhere.tflite"
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelFetchError, match="points outside"):
        verify_export(folder)


def test_a_broken_checkout_config_is_shown_rather_than_taken_for_no_defaults(tmp_path, capfd):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("tracking: [not, a, mapping]\n")
    (tmp_path / "params.yaml").write_text("data: {}\n")
    assert main(["--root", str(tmp_path)]) == 2
    errors = capfd.readouterr().err
    assert "invalid configuration" in errors and "config.yaml" in errors
