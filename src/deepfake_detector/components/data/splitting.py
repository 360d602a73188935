"""Train/val/test assignment by duplicate group: stratified by label (and by source, when there
are several), seeded, and leak-free (every member of a group shares one split)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from deepfake_detector.components.data.datasets import SPLITS
from deepfake_detector.config.entities import SplitFractions
from deepfake_detector.contracts.errors import DataValidationError
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, REAL


def split_by_group(labels: Sequence[int], groups: Sequence[str], fractions: SplitFractions,
                   seed: int, sources: Sequence[str] | None = None) -> list[str]:
    """The split of each image, given its label and duplicate group; every group lands whole in one split.

    Per label, groups are shuffled with the seed, placed largest first, each into the split
    furthest below its target image count; with single-image groups the counts hit the
    targets exactly (largest-remainder rounding of count x fraction, at least one image per
    split), and any three groups of a label are enough to give every split one. The result
    depends on the seed and on the set of (label, group) pairs, not on the order of the rows.

    With sources (the data.source entry of each image), the same is done per (source, label), so
    every source is in every split in the configured shares. A group whose copies come from several
    sources is placed with the first of them by name, and moves whole.
    """
    frame = pd.DataFrame({"label": np.asarray(labels, dtype=int), "group": list(groups)})
    # A group holding both labels (a fake video and its original footage, validate's one exception) is placed
    # whole with the label most of its images have (fake on a tie).
    majority = frame.groupby("group")["label"].mean()
    frame["stratum"] = frame["group"].map((majority >= 0.5).map({True: FAKE, False: REAL}))
    frame["source"] = "" if sources is None else pd.Series(list(sources)).groupby(frame["group"]).transform("min")
    names = sorted(frame["source"].unique())
    group_split: dict[str, str] = {}
    for (source, label), rows in frame.groupby(["source", "stratum"])["group"]:
        # One source keeps the seeds (and so the splits) the single-source pipeline has always drawn.
        streams = [seed, int(label)] if sources is None else [seed, names.index(source), int(label)]
        where = f"source {source!r}: " if sources is not None else ""
        group_split.update(place_groups(rows.value_counts().sort_index(), fractions, np.random.default_rng(streams),
                                        f"{where}class '{CLASS_NAMES.get(int(label), str(label))}'"))
    splits = [group_split[group] for group in frame["group"]]
    check_every_split_has_both_classes(frame["label"].to_numpy(), splits)
    return splits


def place_groups(sizes: pd.Series, fractions: SplitFractions, rng: np.random.Generator, what: str) -> dict[str, str]:
    """{group: split} for the groups of one stratum, sizes indexed by group; what names the stratum in errors."""
    if len(sizes) < len(SPLITS):
        raise DataValidationError(
            f"{what} has only {len(sizes)} distinct image(s) after grouping duplicates; "
            f"each of {', '.join(SPLITS)} needs at least one")
    order = rng.permutation(len(sizes))
    order = order[np.argsort(-sizes.to_numpy()[order], kind="stable")]
    targets = target_counts(int(sizes.sum()), fractions)
    assigned = dict.fromkeys(SPLITS, 0)
    placed_in: dict[str, str] = {}
    for placed, position in enumerate(order):
        # Once only as many groups are left as splits are empty, fill the empty ones.
        empty = [split for split in SPLITS if assigned[split] == 0]
        candidates = empty if len(order) - placed <= len(empty) else SPLITS
        split = max(candidates, key=lambda s: targets[s] - assigned[s])  # ties: the earlier split
        placed_in[sizes.index[position]] = split
        assigned[split] += int(sizes.iloc[position])
    return placed_in


def target_counts(total: int, fractions: SplitFractions) -> dict[str, int]:
    """Image counts per split that sum to total, as close to total x fraction as integers allow
    (largest remainder), with at least one image in every split when total allows it."""
    wanted = np.array([getattr(fractions, split) for split in SPLITS], dtype=float)
    exact = total * wanted / wanted.sum()
    counts = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]:
        counts[index] += 1
    while total >= len(SPLITS) and (counts == 0).any():
        counts[np.argmax(counts)] -= 1
        counts[np.argmin(counts)] += 1
    return dict(zip(SPLITS, (int(c) for c in counts), strict=True))


def keep_groups_together(splits: Sequence[str], groups: Sequence[str]) -> tuple[list[str], int]:
    """For a dataset that came split: move every group that straddles splits wholly into the
    earliest of them (train before val before test), so no picture leaks into a later split.
    Returns the new splits and how many images moved."""
    rank = pd.Series([SPLITS.index(split) for split in splits])
    earliest = rank.groupby(pd.Series(list(groups))).transform("min")
    moved = int((earliest != rank).sum())
    return [SPLITS[r] for r in earliest], moved


def check_every_split_has_both_classes(labels: Sequence[int], splits: Sequence[str]) -> None:
    """Raise, naming what is missing, unless every split holds images of every label."""
    present = pd.crosstab(pd.Series(list(splits), name="split"), pd.Series(np.asarray(labels), name="label"))
    missing = [f"{split} has no {CLASS_NAMES.get(int(label), label)} images"
               for split in SPLITS for label in sorted(CLASS_NAMES)
               if split not in present.index or label not in present.columns or present.at[split, label] == 0]
    if missing:
        raise DataValidationError("every split needs images of both classes: " + "; ".join(missing))
