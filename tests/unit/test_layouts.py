"""Layout recognition and the index it produces: class folders, HardFake's data.csv, pre-split
trees, wrappers, and the datasets that must stop the stage."""
from __future__ import annotations

from pathlib import Path

import pytest

from deepfake_detector.components.data.ingestion import DataIngestion
from deepfake_detector.contracts.errors import IngestionError
from tests.unit.ingest_fixtures import (
    ingest,
    make_class_folders,
    make_config,
    make_hardfake,
    read_index,
    read_report,
    write_image,
    zip_folder,
)


def index_of(tmp_path: Path, source: Path, **config_overrides) -> list[tuple[str, str, str]]:
    result = ingest(tmp_path, source, **config_overrides)
    return [(row["path"], row["class_name"], row["split"]) for row in read_index(result.index_file)]


def ingest_error(tmp_path: Path, source: Path) -> str:
    config = make_config(tmp_path, source)
    with pytest.raises(IngestionError) as caught:
        DataIngestion(config).run()
    assert not config.dataset_dir.exists()
    return str(caught.value)


# --- class folders ---------------------------------------------------------------------------

def test_class_folders_are_matched_case_insensitively(tmp_path: Path) -> None:
    source = make_class_folders(tmp_path / "inputs/faces", {"Fake": 1, "REAL": 1})
    assert index_of(tmp_path, source) == [("Fake/img_0.jpg", "fake", ""), ("REAL/img_0.jpg", "real", "")]


def test_class_name_aliases_from_params_are_applied(tmp_path: Path) -> None:
    source = make_class_folders(tmp_path / "inputs/faces", {"manipulated": 1, "original": 1})
    aliases = {"fake": ("fake", "manipulated"), "real": ("real", "original")}
    assert [row[1] for row in index_of(tmp_path, source, class_names=aliases)] == ["fake", "real"]


def test_unknown_folder_beside_class_folders_keeps_its_raw_label(tmp_path: Path) -> None:
    source = make_class_folders(tmp_path / "inputs/faces", {"fake": 1, "real": 1, "Morphed": 1})
    assert ("Morphed/img_0.jpg", "morphed", "") in index_of(tmp_path, source)


def test_files_nested_inside_class_folders_are_listed(tmp_path: Path) -> None:
    source = make_class_folders(tmp_path / "inputs/faces", {"fake": 1, "real": 1})
    write_image(source / "fake" / "batch2" / "deep.jpg")
    assert ("fake/batch2/deep.jpg", "fake", "") in index_of(tmp_path, source)


def test_hidden_and_system_files_are_not_listed(tmp_path: Path) -> None:
    source = make_class_folders(tmp_path / "inputs/faces", {"fake": 1, "real": 1})
    for litter in ("fake/.DS_Store", "real/Thumbs.db", "fake/.cache/x.jpg", "__MACOSX/fake/._img_0.jpg"):
        write_image(source / litter)
    assert [row[0] for row in index_of(tmp_path, source)] == ["fake/img_0.jpg", "real/img_0.jpg"]


def test_non_image_files_in_class_folders_are_listed_for_validation(tmp_path: Path) -> None:
    source = make_class_folders(tmp_path / "inputs/faces", {"fake": 1, "real": 1})
    (source / "real" / "notes.txt").write_text("not an image")
    assert ("real/notes.txt", "real", "") in index_of(tmp_path, source)


def test_single_folder_wrappers_are_descended(tmp_path: Path) -> None:
    tree = make_hardfake(tmp_path / "inputs/tree")
    archive = zip_folder(tree, tmp_path / "inputs/hardfake.zip", prefix="archive/hardfakevsrealfaces/")
    result = ingest(tmp_path, archive)
    paths = [row["path"] for row in read_index(result.index_file)]
    assert paths[0] == "archive/hardfakevsrealfaces/fake/f1.jpg"
    assert all((result.dataset_dir / path).is_file() for path in paths)
    assert read_report(result.report_file)["dataset_root"] == "archive/hardfakevsrealfaces"


def test_macos_archive_litter_does_not_hide_a_wrapper_folder(tmp_path: Path) -> None:
    tree = make_class_folders(tmp_path / "inputs/tree/faces", {"fake": 1, "real": 1})
    write_image(tree.parent / "__MACOSX" / "faces" / "fake" / "._img_0.jpg")
    archive = zip_folder(tree.parent, tmp_path / "inputs/faces.zip")
    result = ingest(tmp_path, archive)
    assert (result.layout, read_report(result.report_file)["dataset_root"]) == ("class_folders", "faces")


# --- HardFake's data.csv -----------------------------------------------------------------------

def test_hardfake_labels_in_any_case_map_to_classes(tmp_path: Path) -> None:
    source = make_hardfake(tmp_path / "inputs/hardfake", [("a", "Fake"), ("b", "REAL")])
    result = ingest(tmp_path, source)
    assert result.layout == "hardfake_csv"
    assert [row["class_name"] for row in read_index(result.index_file)] == ["fake", "real"]


def test_hardfake_ids_with_or_without_extension_name_their_files(tmp_path: Path) -> None:
    source = make_hardfake(tmp_path / "inputs/hardfake", [("a", "fake"), ("b.jpg", "real")])
    assert [row[0] for row in index_of(tmp_path, source)] == ["fake/a.jpg", "real/b.jpg"]


def test_hardfake_id_without_extension_finds_a_png(tmp_path: Path) -> None:
    source = make_hardfake(tmp_path / "inputs/hardfake", [("a", "fake"), ("b", "real")])
    (source / "real" / "b.jpg").rename(source / "real" / "b.png")
    assert [row[0] for row in index_of(tmp_path, source)] == ["fake/a.jpg", "real/b.png"]


def test_hardfake_csv_is_authoritative_over_files_on_disk(tmp_path: Path) -> None:
    source = make_hardfake(tmp_path / "inputs/hardfake")
    write_image(source / "fake" / "stray.jpg")
    result = ingest(tmp_path, source)
    assert "fake/stray.jpg" not in [row["path"] for row in read_index(result.index_file)]
    report = read_report(result.report_file)
    assert report["unlisted_files"] == 1
    assert any("fake/stray.jpg" in warning for warning in report["warnings"])


def test_hardfake_row_whose_file_is_missing_is_still_listed(tmp_path: Path) -> None:
    source = make_hardfake(tmp_path / "inputs/hardfake")
    (source / "real" / "r2.jpg").unlink()
    result = ingest(tmp_path, source)
    assert "real/r2.jpg" in [row["path"] for row in read_index(result.index_file)]
    assert any("missing" in warning for warning in read_report(result.report_file)["warnings"])


def test_hardfake_unknown_label_is_kept_raw_for_validation(tmp_path: Path) -> None:
    source = make_hardfake(tmp_path / "inputs/hardfake", [("a", "fake"), ("b", "real"), ("c", "Unsure")])
    assert ("unsure/c.jpg", "unsure", "") in index_of(tmp_path, source)


def test_data_csv_without_the_expected_columns_is_refused(tmp_path: Path) -> None:
    source = make_hardfake(tmp_path / "inputs/hardfake")
    (source / "data.csv").write_text("file,target\nf1,fake\n")
    message = ingest_error(tmp_path, source)
    assert "images_id,label" in message and "file,target" in message


# --- pre-split trees ---------------------------------------------------------------------------

def test_presplit_tree_keeps_its_split_and_names_valid_val(tmp_path: Path) -> None:
    source = tmp_path / "inputs/split"
    for split in ("train", "valid", "test"):
        make_class_folders(source / split, {"fake": 1, "real": 1})
    index = index_of(tmp_path, source)
    assert {(row[0].split("/")[0], row[2]) for row in index} == {("train", "train"), ("valid", "val"),
                                                                ("test", "test")}
    assert ("valid/fake/img_0.jpg", "fake", "val") in index


# --- datasets that stop the stage ------------------------------------------------------------

def test_empty_dataset_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "inputs/empty"
    (source / "nested").mkdir(parents=True)
    assert "empty" in ingest_error(tmp_path, source)


def test_class_folders_without_files_are_refused_as_empty(tmp_path: Path) -> None:
    source = tmp_path / "inputs/faces"
    for folder in ("fake", "real"):
        (source / folder).mkdir(parents=True)
    (source / "README.md").write_text("faces")
    assert "empty" in ingest_error(tmp_path, source)


def test_single_class_dataset_is_refused(tmp_path: Path) -> None:
    source = make_class_folders(tmp_path / "inputs/faces", {"fake": 2, "other": 1})
    message = ingest_error(tmp_path, source)
    assert "both fake and real" in message and "fake (2 files)" in message and "other" in message


def test_lone_class_folder_is_not_mistaken_for_a_wrapper(tmp_path: Path) -> None:
    source = make_class_folders(tmp_path / "inputs/faces", {"real": 2})
    assert "both fake and real" in ingest_error(tmp_path, source)


def test_unrecognized_layout_shows_the_top_of_the_tree(tmp_path: Path) -> None:
    source = make_class_folders(tmp_path / "inputs/pets", {"cats": 1, "dogs": 1})
    message = ingest_error(tmp_path, source)
    assert "unrecognized dataset layout" in message
    assert "cats/  (1 files, 0 folders)" in message and "dogs/" in message
