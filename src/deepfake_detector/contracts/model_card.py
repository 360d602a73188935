"""The export folder's model card: the one reader and verifier.

The predictor, the server's /api/v1/model, the benchmark and model delivery all read the card
through `read_model_card`, so they agree on what a valid card is and on which files belong to the
export (every listed file must resolve inside the export folder).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfake_detector.contracts.decision_rule import DecisionRule
from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.export_layout import MODEL_CARD_NAME, TFLITE_VARIANTS
from deepfake_detector.contracts.faces import FACE_CROPS, FACE_DETECTORS
from deepfake_detector.contracts.input_fit import INPUT_FITS, LEGACY_INPUT_FIT
from deepfake_detector.contracts.json_files import read_json_object
from deepfake_detector.contracts.video_aggregation import AGGREGATIONS
from deepfake_detector.utils.files import sha256_file

MADE_BY = "export"


@dataclass(frozen=True)
class ExportEntry:
    """One exported file as the card lists it, with what the export stage measured on it."""

    variant: str
    file: str
    sha256: str
    facts: Mapping[str, Any] = field(default_factory=dict)  # size, parity, per-variant test metrics


@dataclass(frozen=True)
class ModelCard:
    """A model card read from an export folder and checked for every key a consumer relies on."""

    export_dir: Path
    source_sha256: str                     # SHA-256 of the trained model.h5 the exports were made from
    rule: DecisionRule                     # threshold and temperature, as the evaluate stage fixed them
    exports: Mapping[str, ExportEntry]
    test_metrics: Mapping[str, Any]
    content: Mapping[str, Any]             # the whole card, as written

    @property
    def path(self) -> Path:
        return self.export_dir / MODEL_CARD_NAME

    @property
    def input_fit(self) -> str:
        """How images become the model's input (contracts.input_fit); checked when the card is read."""
        return _input_fit(self.content)

    @property
    def faces(self) -> Mapping[str, Any] | None:
        """The face crop the model was trained on (input.faces: detector, crop, margin, min_size), or None: whole
        images."""
        block = self.content.get("input")
        faces = block.get("faces") if isinstance(block, Mapping) else None
        return faces if isinstance(faces, Mapping) and faces.get("detector") else None

    @property
    def video(self) -> Mapping[str, Any] | None:
        """The video rule chosen on validation videos (video: aggregation, threshold, chosen_on, val_roc_auc), or
        None: the model was evaluated on still images only (or the card predates video evaluation)."""
        video = self.content.get("video")
        return video if isinstance(video, Mapping) else None

    @property
    def dataset(self) -> Mapping[str, Any]:
        value = self.content.get("dataset")
        return value if isinstance(value, Mapping) else {}

    def file_of(self, variant: str) -> Path:
        """The path of one exported variant: listed in the card, inside the export folder, present."""
        entry = self.exports.get(variant)
        if entry is None:
            available = ", ".join(name for name in self.exports if name in TFLITE_VARIANTS) or "none"
            raise ModelError(f"{self.path}: no {variant!r} export (this card has: {available})")
        path = self.export_dir / entry.file
        if not path.is_file():
            raise ModelError(f"{path} not found (listed in {self.path}): re-run the export stage")
        return path

    def verify(self, variant: str) -> Path:
        """file_of(variant), after checking its SHA-256 against the card's."""
        path = self.file_of(variant)
        if sha256_file(path) != self.exports[variant].sha256:
            raise ModelError(f"{path} differs from the SHA-256 in {self.path} (changed after export): "
                             "re-run the export stage")
        return path

    def verify_all(self) -> tuple[Path, ...]:
        """Every listed file, each checked against its SHA-256; ModelError naming the first problem."""
        if not self.exports:
            raise ModelError(f"{self.path} lists no exports")
        return tuple(self.verify(variant) for variant in self.exports)


def read_model_card(export_dir: Path) -> ModelCard:
    """The card in export_dir; ModelError naming the file and the problem when it is absent or malformed."""
    export_dir = Path(export_dir)
    path = export_dir / MODEL_CARD_NAME
    content = read_json_object(path, MADE_BY)
    problems: list[str] = []
    source = content.get("source")
    source_sha = source.get("sha256") if isinstance(source, Mapping) else None
    if not isinstance(source_sha, str) or not source_sha:
        problems.append("source.sha256 must be a string")
    rule = _rule(content, problems)
    exports = _exports(content.get("exports"), export_dir, problems)
    if _input_fit(content) not in INPUT_FITS:
        problems.append(f"input.fit must be one of {', '.join(INPUT_FITS)}")
    _check_faces(content, problems)
    _check_video(content.get("video"), problems)
    metrics = content.get("test_metrics")
    if metrics is not None and not isinstance(metrics, Mapping):
        problems.append("test_metrics must be an object")
    if problems:
        raise ModelError(f"{path}: malformed model card: {'; '.join(problems)}; re-run the {MADE_BY} stage")
    return ModelCard(export_dir=export_dir, source_sha256=source_sha, rule=rule, exports=exports,
                     test_metrics=dict(metrics or {}), content=content)


def _check_faces(content: Mapping[str, Any], problems: list[str]) -> None:
    """input.faces, when set, must say what the faces stage did in terms serving can repeat."""
    block = content.get("input")
    faces = block.get("faces") if isinstance(block, Mapping) else None
    if faces is None:
        return
    if not isinstance(faces, Mapping):
        problems.append("input.faces must be an object or null")
        return
    if faces.get("detector") not in FACE_DETECTORS[1:]:
        problems.append(f"input.faces.detector must be one of {', '.join(FACE_DETECTORS[1:])}")
    if faces.get("crop") not in FACE_CROPS:
        problems.append(f"input.faces.crop must be one of {', '.join(FACE_CROPS)}")
    margin, min_size = faces.get("margin"), faces.get("min_size")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= 1:
        problems.append("input.faces.margin must be a number from 0 to 1")
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 8:
        problems.append("input.faces.min_size must be a whole number of pixels, at least 8")


def _check_video(video: Any, problems: list[str]) -> None:
    """video, when set, must name a rule and a threshold serving can apply to a video's frame scores."""
    if video is None:
        return
    if not isinstance(video, Mapping):
        problems.append("video must be an object or null")
        return
    if video.get("aggregation") not in AGGREGATIONS:
        problems.append(f"video.aggregation must be one of {', '.join(AGGREGATIONS)}")
    threshold = video.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        problems.append("video.threshold must be a number strictly between 0 and 1")
    aucs = video.get("val_roc_auc", {})
    if not (isinstance(aucs, Mapping) and all(
            rule in AGGREGATIONS and isinstance(auc, (int, float)) and not isinstance(auc, bool) and 0 <= auc <= 1
            for rule, auc in aucs.items())):
        problems.append(f"video.val_roc_auc must map rules ({', '.join(AGGREGATIONS)}) to numbers from 0 to 1")
    if not isinstance(video.get("chosen_on", ""), str):
        problems.append("video.chosen_on must be a string")


def _input_fit(content: Mapping[str, Any]) -> Any:
    block = content.get("input")
    return block.get("fit", LEGACY_INPUT_FIT) if isinstance(block, Mapping) else LEGACY_INPUT_FIT


def _rule(content: Mapping[str, Any], problems: list[str]) -> DecisionRule | None:
    output = content.get("output")
    if not isinstance(output, Mapping):
        problems.append("output must be an object with threshold and temperature")
        return None
    threshold, temperature = output.get("threshold"), output.get("temperature", 1.0)
    try:
        return DecisionRule(threshold, temperature, source=MODEL_CARD_NAME)
    except ValueError as error:
        problems.append(f"output: {error}")
        return None


def _exports(value: Any, export_dir: Path, problems: list[str]) -> dict[str, ExportEntry]:
    if not isinstance(value, Mapping):
        problems.append("exports must be an object of {variant: {file, sha256}}")
        return {}
    entries = {}
    root = export_dir.resolve()
    for variant, entry in value.items():
        if not (isinstance(entry, Mapping) and isinstance(entry.get("file"), str)
                and isinstance(entry.get("sha256"), str)):
            problems.append(f"exports.{variant} needs a file and a sha256")
            continue
        # One rule for "inside the folder": the resolved path, which also catches links and '..'.
        if not (export_dir / entry["file"]).resolve().is_relative_to(root):
            problems.append(f"exports.{variant}.file {entry['file']!r} points outside {export_dir}")
            continue
        facts = {key: item for key, item in entry.items() if key not in ("file", "sha256")}
        entries[variant] = ExportEntry(variant=variant, file=entry["file"], sha256=entry["sha256"], facts=facts)
    return entries
