"""What the served model was trained on, as its model card records it, ready to show: the data source
(credentials removed), how many images, and a notice when that was the synthetic demo set, whose
verdicts on real photographs mean nothing. The page, /api/v1/model and `predict` all show this."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deepfake_detector.contracts.demo_sources import demo_family
from deepfake_detector.contracts.model_card import ModelCard
from deepfake_detector.utils.redaction import displayable_source

DEMO_NOTICE = ("This model was trained on the synthetic demo set (data.source: demo): its verdicts on real "
               "photographs mean nothing. Train it on real face photos first (set data.source, e.g. to the "
               "HardFake archive, and rerun the pipeline; see docs/data.md).")
NO_CARD = "unknown (no model card describes the served model)"
NOT_RECORDED = "not recorded in the model card"
SPLIT_ORDER = ("train", "val", "test")


@dataclass(frozen=True)
class TrainingData:
    """The card's dataset block: source as shown (None when not recorded) and images per split."""

    has_card: bool = False
    source: str | None = None
    images_per_split: Mapping[str, int] = field(default_factory=dict)
    recorded: Mapping[str, Any] = field(default_factory=dict)   # the card's whole dataset block, as written

    @classmethod
    def of(cls, card: ModelCard | None) -> TrainingData:
        dataset = card.dataset if card is not None else {}
        source = dataset.get("source")
        counts = dataset.get("images_per_split")
        counts = counts if isinstance(counts, Mapping) else {}
        return cls(has_card=card is not None,
                   source=displayable_source(source) if isinstance(source, str) and source.strip() else None,
                   images_per_split=_in_split_order({str(split): n for split, n in counts.items()
                                                     if isinstance(n, int) and not isinstance(n, bool)}),
                   recorded=dict(dataset))

    @property
    def images(self) -> int | None:
        return sum(self.images_per_split.values()) if self.images_per_split else None

    @property
    def is_demo(self) -> bool:
        """Trained on the built-in generator only: data.source `demo`, `demo:<family>`, `demo-video[:<family>]`,
        or a list of those (recorded as the entries joined by " + ")."""
        entries = [entry.strip() for entry in (self.source or "").lower().split(" + ")]
        return all(demo_family(entry) is not None for entry in entries)

    @property
    def notice(self) -> str | None:
        return DEMO_NOTICE if self.is_demo else None

    def describe(self) -> str:
        """One line for people, e.g. "demo, 840 images (train 600, val 120, test 120)"."""
        if not self.has_card:
            return NO_CARD
        if self.source is None and self.images is None:
            return NOT_RECORDED
        text = self.source or "an unrecorded source"
        if self.images is not None:
            splits = ", ".join(f"{split} {n:,}" for split, n in self.images_per_split.items())
            text += f", {self.images:,} images ({splits})"
        return text

    def as_api_dict(self) -> dict[str, Any] | None:
        """/api/v1/model's `dataset`: the card's block with the source as shown and the total image count."""
        if not self.recorded:
            return None
        return {**self.recorded, "source": self.source, "images": self.images}


def _in_split_order(counts: dict[str, int]) -> dict[str, int]:
    """train, val, test first (the card lists them alphabetically), then any other split."""
    order = {split: index for index, split in enumerate(SPLIT_ORDER)}
    return dict(sorted(counts.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))
