"""What the ingest stage leaves for the next ones: the dataset tree, index.csv and ingest.json,
written whole or not at all."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from deepfake_detector.components.data.ingestion import DataIngestion
from deepfake_detector.contracts.errors import IngestionError
from tests.unit.ingest_fixtures import (
    files_under,
    ingest,
    make_class_folders,
    make_config,
    make_hardfake,
    read_report,
    zip_folder,
)


def test_index_has_one_row_per_file_with_path_class_and_split(tmp_path: Path) -> None:
    source = make_class_folders(tmp_path / "inputs/faces", {"fake": 2, "real": 1})
    result = ingest(tmp_path, source)
    assert result.index_file.read_text().splitlines() == [
        "path,class_name,split", "fake/img_0.jpg,fake,", "fake/img_1.jpg,fake,", "real/img_0.jpg,real,"]


def test_report_describes_source_layout_checksum_and_counts(tmp_path: Path) -> None:
    tree = make_hardfake(tmp_path / "inputs/tree", [("a", "fake"), ("b", "fake"), ("c", "real")])
    archive = zip_folder(tree, tmp_path / "inputs/hardfake.zip")
    report = read_report(ingest(tmp_path, archive).report_file)
    assert report == {
        "source": str(archive),
        "kind": "archive",
        "layout": "hardfake_csv",
        "dataset_root": "",
        "archive_sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
        "n_files": 3,
        "class_counts": {"fake": 2, "real": 1},
        "unlisted_files": 0,
        "warnings": [],
    }


def test_result_points_at_the_written_outputs(tmp_path: Path) -> None:
    source = make_class_folders(tmp_path / "inputs/faces", {"fake": 2, "real": 1})
    config = make_config(tmp_path, source)
    result = DataIngestion(config).run()
    assert (result.dataset_dir, result.index_file, result.report_file) == (
        config.dataset_dir, config.index_file, config.report_file)
    assert (result.layout, result.n_files, dict(result.class_counts)) == ("class_folders", 3,
                                                                          {"fake": 2, "real": 1})


def test_only_the_outputs_remain_in_the_ingestion_folder(tmp_path: Path) -> None:
    source = make_class_folders(tmp_path / "inputs/faces", {"fake": 1, "real": 1})
    result = ingest(tmp_path, source)
    names = sorted(path.name for path in result.dataset_dir.parent.iterdir())
    assert names == ["dataset", "index.csv", "ingest.json"]


def test_rerun_replaces_the_previous_dataset(tmp_path: Path) -> None:
    ingest(tmp_path, make_class_folders(tmp_path / "inputs/first", {"fake": 1, "real": 1}))
    result = ingest(tmp_path, make_class_folders(tmp_path / "inputs/second", {"Fake": 1, "Real": 1}))
    assert files_under(result.dataset_dir) == ["Fake/img_0.jpg", "Real/img_0.jpg"]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path: (folder / path).read_bytes() for path in files_under(folder)}


def test_failed_rerun_keeps_the_previous_dataset_and_its_files(tmp_path: Path) -> None:
    good = ingest(tmp_path, make_class_folders(tmp_path / "inputs/faces", {"fake": 2, "real": 2}))
    before = snapshot(good.dataset_dir.parent)
    single_class = make_class_folders(tmp_path / "inputs/only_fake", {"fake": 2})
    with pytest.raises(IngestionError):
        DataIngestion(make_config(tmp_path, single_class)).run()
    assert snapshot(good.dataset_dir.parent) == before
