"""Train/val/test splits: stratified, seeded, sized by the fractions, and leak-free (copies of a
picture, exact or near, never sit in two splits)."""
from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepfake_detector.components.data import duplicates
from deepfake_detector.components.data.datasets import read_manifest
from deepfake_detector.components.data.duplicates import group_duplicates, near_pairs
from deepfake_detector.components.data.splitting import keep_groups_together, split_by_group, target_counts
from deepfake_detector.components.data.validation import DataValidation
from deepfake_detector.config.entities import SplitFractions
from deepfake_detector.contracts.errors import DataValidationError
from tests.unit.validation_fixtures import make_config, save_picture, write_dataset, write_index

FRACTIONS = SplitFractions(train=0.7, val=0.15, test=0.15)


def singletons(n_fake: int, n_real: int) -> tuple[list[int], list[str]]:
    labels = [1] * n_fake + [0] * n_real
    return labels, [f"g{i:05d}" for i in range(len(labels))]


def test_split_sizes_follow_the_fractions() -> None:
    labels, groups = singletons(300, 700)
    counts = pd.Series(split_by_group(labels, groups, FRACTIONS, seed=1)).value_counts()
    assert counts.to_dict() == {"train": 700, "val": 150, "test": 150}


def test_every_split_keeps_the_overall_class_ratio() -> None:
    labels, groups = singletons(130, 270)
    frame = pd.DataFrame({"label": labels, "split": split_by_group(labels, groups, FRACTIONS, seed=3)})
    fake_share = frame.groupby("split")["label"].mean()
    assert fake_share.between(130 / 400 - 0.02, 130 / 400 + 0.02).all(), fake_share.to_dict()


def test_same_seed_gives_the_same_split() -> None:
    labels, groups = singletons(50, 50)
    assert split_by_group(labels, groups, FRACTIONS, seed=7) == split_by_group(labels, groups, FRACTIONS, seed=7)


def test_another_seed_gives_another_split() -> None:
    labels, groups = singletons(50, 50)
    assert split_by_group(labels, groups, FRACTIONS, seed=7) != split_by_group(labels, groups, FRACTIONS, seed=8)


def test_split_does_not_depend_on_row_order() -> None:
    labels, groups = singletons(40, 60)
    first = dict(zip(groups, split_by_group(labels, groups, FRACTIONS, seed=5), strict=True))
    order = np.random.default_rng(0).permutation(len(groups))
    shuffled_groups = [groups[i] for i in order]
    shuffled = split_by_group([labels[i] for i in order], shuffled_groups, FRACTIONS, seed=5)
    assert dict(zip(shuffled_groups, shuffled, strict=True)) == first


def test_members_of_a_group_share_one_split() -> None:
    rng = np.random.default_rng(0)
    groups = [f"g{int(g)}" for g in rng.integers(0, 120, size=400)]
    labels = [int(g[1:]) % 2 for g in groups]
    splits = split_by_group(labels, groups, FRACTIONS, seed=0)
    assert pd.DataFrame({"group": groups, "split": splits}).groupby("group")["split"].nunique().max() == 1


def test_three_pictures_of_a_class_give_each_split_one() -> None:
    labels = [1] * 15 + [0] * 3
    groups = ["a"] * 5 + ["b"] * 5 + ["c"] * 5 + ["x", "y", "z"]
    frame = pd.DataFrame({"label": labels, "split": split_by_group(labels, groups, FRACTIONS, seed=0)})
    assert (pd.crosstab(frame["split"], frame["label"]) > 0).all().all()


def test_a_class_too_small_for_three_splits_fails() -> None:
    labels, groups = singletons(2, 10)
    with pytest.raises(DataValidationError, match="class 'fake' has only 2 distinct image"):
        split_by_group(labels, groups, FRACTIONS, seed=0)


def test_target_counts_round_to_the_total_and_give_every_split_one() -> None:
    assert target_counts(10, FRACTIONS) == {"train": 7, "val": 2, "test": 1}
    assert target_counts(3, FRACTIONS) == {"train": 1, "val": 1, "test": 1}


def test_presplit_group_moves_wholly_to_its_earliest_split() -> None:
    splits, moved = keep_groups_together(["test", "val", "train", "test"], ["a", "a", "b", "c"])
    assert splits == ["val", "val", "train", "test"] and moved == 1


def test_near_duplicate_hashes_are_grouped_transitively() -> None:
    shas = ["c" * 64, "a" * 64, "b" * 64, "d" * 64]
    hashes = [0b0111, 0b0000, 0b0111 << 3 | 0b0111, (1 << 64) - 1]  # c~a (3 bits), c~b (3 bits), a-b 6 bits
    assert group_duplicates(shas, hashes, max_distance=3) == ["a" * 16, "a" * 16, "a" * 16, "d" * 16]


def test_exact_copies_share_a_group() -> None:
    assert group_duplicates(["f" * 64, "e" * 64, "f" * 64], [1, 2**40, 1], max_distance=0) == [
        "f" * 16, "e" * 16, "f" * 16]


def test_blockwise_comparison_finds_every_close_pair(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, size=60, dtype=np.uint64)
    hashes[30:] = hashes[:30] ^ (np.uint64(1) << rng.integers(0, 63, size=30).astype(np.uint64))
    monkeypatch.setattr(duplicates, "COMPARISONS_PER_BLOCK", 100)  # several blocks of rows
    found = {tuple(pair) for pair in near_pairs(hashes, 2).tolist()}
    expected = {(i, j) for i in range(60) for j in range(i + 1, 60)
                if bin(int(hashes[i]) ^ int(hashes[j])).count("1") <= 2}
    assert found == expected and len(expected) >= 30


# The component end to end, on small JPEGs.

def test_validated_splits_are_stratified(tmp_path: Path) -> None:
    write_dataset(tmp_path, n_fake=40, n_real=40)
    manifest = read_manifest(DataValidation(make_config(tmp_path)).run().manifest_file)
    counts = pd.crosstab(manifest["split"], manifest["label"])
    assert counts.to_dict() == {0: {"test": 6, "train": 28, "val": 6}, 1: {"test": 6, "train": 28, "val": 6}}


def test_same_seed_gives_the_same_manifest_and_another_seed_another(tmp_path: Path) -> None:
    write_dataset(tmp_path, n_fake=20, n_real=20)
    config = make_config(tmp_path)
    first = DataValidation(config).run().manifest_file.read_bytes()
    again = DataValidation(config).run().manifest_file.read_bytes()
    other = DataValidation(replace(config, seed=43)).run().manifest_file.read_bytes()
    assert first == again
    assert first != other


def test_exact_and_near_duplicates_never_straddle_splits(tmp_path: Path) -> None:
    rows = write_dataset(tmp_path, n_fake=20, n_real=20)
    dataset = tmp_path / "dataset"
    extra = []
    for number in range(8):  # an exact copy and a re-encoded copy of eight pictures per class
        for class_name, seed in (("fake", number), ("real", 100_000 + number)):
            folder = dataset / class_name
            shutil.copy(folder / f"{class_name}_{number}.jpg", folder / f"copy_{number}.jpg")
            save_picture(folder / f"recoded_{number}.jpg", seed=seed, quality=60)
            extra += [(f"{class_name}/copy_{number}.jpg", class_name, ""),
                      (f"{class_name}/recoded_{number}.jpg", class_name, "")]
    write_index(tmp_path, rows + extra)
    config = make_config(tmp_path)

    manifest = read_manifest(DataValidation(config).run().manifest_file).set_index("path")
    for class_name in ("fake", "real"):
        for number in range(8):
            family = [f"{class_name}/{class_name}_{number}.jpg", f"{class_name}/copy_{number}.jpg",
                      f"{class_name}/recoded_{number}.jpg"]
            assert manifest.loc[family, "group"].nunique() == 1, family
            assert manifest.loc[family, "split"].nunique() == 1, family
    assert manifest["group"].nunique() == 40


def test_presplit_dataset_keeps_its_split(tmp_path: Path) -> None:
    rows = write_dataset(tmp_path, n_fake=9, n_real=9)
    presplit = [(path, cls, ("train", "val", "test")[i % 3]) for i, (path, cls, _) in enumerate(rows)]
    write_index(tmp_path, presplit)

    manifest = read_manifest(DataValidation(make_config(tmp_path)).run().manifest_file)
    assert manifest.set_index("path")["split"].to_dict() == {path: split for path, _, split in presplit}


def test_presplit_duplicate_across_splits_moves_to_the_earlier_split(tmp_path: Path, caplog) -> None:
    rows = write_dataset(tmp_path, n_fake=9, n_real=9)
    presplit = [(path, cls, ("train", "val", "test")[i % 3]) for i, (path, cls, _) in enumerate(rows)]
    shutil.copy(tmp_path / "dataset" / "fake" / "fake_0.jpg", tmp_path / "dataset" / "fake" / "leak.jpg")
    write_index(tmp_path, presplit + [("fake/leak.jpg", "fake", "test")])  # fake_0 is in train

    with caplog.at_level(logging.WARNING):
        manifest = read_manifest(DataValidation(make_config(tmp_path)).run().manifest_file)
    assert manifest.set_index("path").loc["fake/leak.jpg", "split"] == "train"
    assert any("1 image(s) moved to an earlier split" in message for message in caplog.messages)


def test_partly_split_index_is_split_afresh_with_a_warning(tmp_path: Path, caplog) -> None:
    rows = write_dataset(tmp_path, n_fake=20, n_real=20)
    rows[0] = (rows[0][0], rows[0][1], "test")
    write_index(tmp_path, rows)

    with caplog.at_level(logging.WARNING):
        manifest = read_manifest(DataValidation(make_config(tmp_path)).run().manifest_file)
    assert manifest["split"].value_counts().to_dict() == {"train": 28, "val": 6, "test": 6}
    assert any("Only some images" in message for message in caplog.messages)


def test_a_group_holding_both_labels_lands_whole_in_one_split() -> None:
    """validate's one exception: a fake video and the real footage it was made from."""
    labels = [1] * 6 + [0] * 6 + [1, 1, 0, 0]
    groups = [f"f{i}" for i in range(6)] + [f"r{i}" for i in range(6)] + ["pair"] * 4
    splits = split_by_group(labels, groups, FRACTIONS, seed=0)
    assert len({split for split, group in zip(splits, groups, strict=True) if group == "pair"}) == 1
