"""A list in data.source: checked entry by entry, each fetched into its own folder, split per source."""
import dataclasses
from pathlib import Path

import pytest
import yaml

from deepfake_detector.components.data.ingestion import MULTI_SOURCE, DataIngestion, IngestionResult
from deepfake_detector.components.data.sources import resolve_source, source_folder
from deepfake_detector.components.data.splitting import split_by_group
from deepfake_detector.config import ConfigurationManager
from deepfake_detector.config.entities import SplitFractions
from deepfake_detector.config.params import source_label
from deepfake_detector.contracts.errors import ConfigError, DataValidationError, IngestionError
from tests.unit.ingest_fixtures import ingest, make_class_folders, make_config, read_index, read_report, write_image

REPO = Path(__file__).resolve().parents[2]
FRACTIONS = SplitFractions(train=0.6, val=0.2, test=0.2)
CHECKSUM = "ab" * 32


def with_data(root: Path, **data) -> Path:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["data"].update(data)
    path.write_text(yaml.safe_dump(params))
    return root


def load_error(root: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        ConfigurationManager(root=root)
    return str(caught.value)


# ---- params.yaml ----------------------------------------------------------------------------------------

def test_a_list_reaches_the_ingest_entity_with_local_paths_resolved(repo_copy: Path) -> None:
    manager = ConfigurationManager(root=with_data(repo_copy, source=["demo", "data/mine"]))
    config = manager.get_data_ingestion_config()
    assert config.source == ("demo", str(repo_copy / "data/mine"))
    assert config.training_sources == config.source
    assert config.source_names == ("demo", "data/mine")  # as written: index.csv must not depend on the checkout
    assert manager.params.data.source_label == "demo + data/mine"


def test_one_source_stays_a_string(repo_copy: Path) -> None:
    config = ConfigurationManager(root=repo_copy).get_data_ingestion_config()
    assert (config.source, config.training_sources, config.is_multi_source) == ("demo", ("demo",), False)


@pytest.mark.parametrize(("sources", "message"), [
    (["demo", ""], "data.source[1]: expected a non-empty string"),
    (["demo", 3], "data.source[1]: expected a non-empty string"),
    (["demo", "demo:b", "demo"], "data.source[2]: 'demo' is listed twice (also data.source[0])"),
    ([], "data.source: an empty list names no data"),
])
def test_a_bad_entry_is_refused_by_its_index(repo_copy: Path, sources: list, message: str) -> None:
    assert message in load_error(with_data(repo_copy, source=sources))


def test_one_checksum_for_a_list_of_sources_is_refused(repo_copy: Path) -> None:
    error = load_error(with_data(repo_copy, source=["demo", "demo:b"], sha256=CHECKSUM))
    assert "params.yaml: data.sha256: data.source lists 2 sources" in error


def test_checksums_must_match_the_sources_one_to_one(repo_copy: Path) -> None:
    assert "1 checksum(s) for 2 sources" in load_error(
        with_data(repo_copy, source=["demo", "demo:b"], sha256=[CHECKSUM]))
    assert "a list of checksums needs a list of sources" in load_error(
        with_data(repo_copy, source="demo", sha256=[CHECKSUM]))


def test_a_checksum_list_may_skip_sources_with_null(repo_copy: Path) -> None:
    manager = ConfigurationManager(root=with_data(repo_copy, source=["demo", "a.zip"], sha256=[None, CHECKSUM]))
    assert manager.get_data_ingestion_config().checksums == (None, CHECKSUM)


def test_records_redact_credentials_in_every_list_entry(repo_copy: Path) -> None:
    sources = ["demo", "https://user:secret@data.example.org/faces.zip?token=abc"]
    manager = ConfigurationManager(root=with_data(repo_copy, source=sources))
    assert manager.params_as_written()["data"]["source"] == ["demo", "https://data.example.org/faces.zip"]
    assert manager.params.data.source_label == "demo + https://data.example.org/faces.zip"
    assert "secret" not in str(manager.get_export_config().params)


def test_source_label_of_one_source_is_the_source() -> None:
    assert source_label("kaggle:owner/hardfake") == "kaggle:owner/hardfake"


# ---- ingest ------------------------------------------------------------------------------------------------

def ingest_list(tmp_path: Path, *sources: Path | str, **overrides) -> IngestionResult:
    config = dataclasses.replace(make_config(tmp_path, "demo"), source=tuple(map(str, sources)), **overrides)
    return DataIngestion(config).run()


@pytest.mark.parametrize(("entry", "folder"), [
    ("demo", "00-demo"), ("demo:b", "00-demo-b"), ("kaggle:someone/hard-fake", "00-someone-hard-fake"),
    ("https://user:pw@example.org/sets/faces%20v2.tar.gz?token=x", "00-faces-20v2"),
])
def test_each_entry_gets_a_readable_folder(entry: str, folder: str) -> None:
    assert source_folder(0, resolve_source(entry)) == folder


def test_two_folders_are_indexed_with_their_source(tmp_path: Path) -> None:
    first = make_class_folders(tmp_path / "studio", {"fake": 2, "real": 1})
    second = make_class_folders(tmp_path / "phones.d", {"fake": 1, "real": 2})
    result = ingest_list(tmp_path, first, second, source_names=("studio", "phones.d"))
    rows = read_index(result.index_file)
    assert {(row["path"].split("/")[0], row["source"]) for row in rows} == {("00-studio", "studio"),
                                                                              ("01-phones.d", "phones.d")}
    assert all((result.dataset_dir / row["path"]).is_file() for row in rows)
    report = read_report(result.report_file)
    assert (report["layout"], report["n_files"], report["class_counts"]) == (MULTI_SOURCE, 6, {"fake": 3, "real": 3})
    assert [(part["source"], part["class_counts"]) for part in report["sources"]] == [
        ("studio", {"fake": 2, "real": 1}), ("phones.d", {"fake": 1, "real": 2})]


def test_a_source_without_both_classes_is_named_by_its_index(tmp_path: Path) -> None:
    good = make_class_folders(tmp_path / "good")
    only_fakes = make_class_folders(tmp_path / "fakes", {"fake": 2})
    with pytest.raises(IngestionError, match=r"data.source\[1\] .*fakes.*needs both fake and real"):
        ingest_list(tmp_path, good, only_fakes)
    assert not (tmp_path / "artifacts" / "data_ingestion" / "index.csv").exists()


def test_a_missing_source_fails_before_any_is_fetched(tmp_path: Path) -> None:
    good = make_class_folders(tmp_path / "good")
    with pytest.raises(IngestionError, match=r"data.source\[1\] .*no such file or folder"):
        ingest_list(tmp_path, good, tmp_path / "nowhere")


def test_one_checksum_applies_to_its_own_entry_only(tmp_path: Path) -> None:
    folder = make_class_folders(tmp_path / "folder")
    with pytest.raises(IngestionError, match=r"data.source\[0\] .*data.sha256 is set"):
        ingest_list(tmp_path, folder, "demo", sha256=(CHECKSUM, None))


def test_one_source_keeps_the_index_it_always_had(tmp_path: Path) -> None:
    write_image(tmp_path / "data" / "fake" / "a.jpg")
    write_image(tmp_path / "data" / "real" / "b.jpg", seed=1)
    result = ingest(tmp_path, tmp_path / "data")
    assert result.index_file.read_text() == "path,class_name,split\nfake/a.jpg,fake,\nreal/b.jpg,real,\n"


# ---- split ----------------------------------------------------------------------------------------------------

def images(source: str, label: int, count: int) -> list[tuple[str, int, str]]:
    return [(source, label, f"{source}-{label}-{index}") for index in range(count)]


def split_of(rows: list[tuple[str, int, str]], seed: int = 0) -> list[str]:
    sources, labels, groups = zip(*rows, strict=True)
    return split_by_group(labels, groups, FRACTIONS, seed, sources=sources)


def test_every_source_reaches_every_split_in_its_shares() -> None:
    # A large source beside a small one: stratifying by class alone could leave the small one out of val/test.
    rows = images("big", 0, 40) + images("big", 1, 40) + images("small", 0, 5) + images("small", 1, 5)
    splits = split_of(rows)
    for source, label, total in (("big", 0, 40), ("big", 1, 40), ("small", 0, 5), ("small", 1, 5)):
        chosen = [split for (s, lab, _), split in zip(rows, splits, strict=True) if (s, lab) == (source, label)]
        wanted = {"train": round(total * 0.6), "val": round(total * 0.2), "test": round(total * 0.2)}
        assert {name: chosen.count(name) for name in wanted} == wanted


def test_a_picture_in_two_sources_stays_in_one_split() -> None:
    rows = images("a", 0, 6) + images("a", 1, 6) + images("b", 0, 6) + images("b", 1, 6)
    shared = [("b", label, group) for (_, label, group) in rows[:12]]  # source b re-ships every image of a
    rows += shared
    splits = split_of(rows)
    by_group: dict[str, set[str]] = {}
    for (_, _, group), split in zip(rows, splits, strict=True):
        by_group.setdefault(group, set()).add(split)
    assert all(len(places) == 1 for places in by_group.values())


def test_a_source_too_small_to_split_is_named() -> None:
    rows = images("big", 0, 10) + images("big", 1, 10) + images("tiny", 0, 3) + images("tiny", 1, 2)
    with pytest.raises(DataValidationError, match="source 'tiny': class 'fake' has only 2 distinct image"):
        split_of(rows)


def test_the_split_does_not_depend_on_row_order() -> None:
    rows = images("a", 0, 7) + images("a", 1, 7) + images("b", 0, 8) + images("b", 1, 9)
    forward = dict(zip(rows, split_of(rows), strict=True))
    backward = dict(zip(rows[::-1], split_of(rows[::-1]), strict=True))
    assert forward == backward
