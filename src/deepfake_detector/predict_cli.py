"""`deepfake-detector predict`: score image files and folders with the serving runtime, so every
number equals what the web API answers for the same file, and report them as a table, CSV or JSON."""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tqdm import tqdm

from deepfake_detector.contracts.errors import ConfigError, ImageError, ModelError
from deepfake_detector.contracts.faces import FACE_CROPS, SERVED_FACE_DETECTORS
from deepfake_detector.utils.files import write_text_atomic

if TYPE_CHECKING:
    from deepfake_detector.serving.analysis import ImageAnalysis
    from deepfake_detector.serving.service import DetectionService
    from deepfake_detector.serving.video_analysis import VideoAnalysis

# The formats the shared decoder reads (inference.images.SUPPORTED_FORMATS), as TensorFlow does, and the video
# containers video/decoding.py reads (a file given by name is judged by its content, whatever its suffix).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi"})
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
FORMATS = ("table", "csv", "json")
OUTPUT_FORMATS = {".csv": "csv", ".json": "json"}
CSV_COLUMNS = ("path", "kind", "label", "fake_probability", "threshold", "scored_region", "faces", "frames",
               "width", "height", "total_ms", "heatmap_method", "model_version", "error")

EXIT_OK, EXIT_FAILED_FILES, EXIT_USAGE = 0, 1, 2


@dataclass
class Inputs:
    """The images to score, in a stable order, and the inputs that were not usable."""

    images: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    has_folder: bool = False


@dataclass
class Report:
    """Every scored image (its analysis, named by its path) in input order, and every failure."""

    results: list[ImageAnalysis | VideoAnalysis] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="image or video files, or folders to scan for "
                             f"{', '.join(sorted(ext.lstrip('.') for ext in MEDIA_EXTENSIONS))} files")
    parser.add_argument("-r", "--recursive", action=argparse.BooleanOptionalAction, default=True,
                        help="scan folders' subfolders too (default: on; --no-recursive scans the top level only)")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="what to print to stdout (default: table)")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="also write every result to FILE, as CSV or JSON after its suffix (.csv, .json)")
    parser.add_argument("--explain", action="store_true",
                        help="compute a heatmap per image (its PNG data URL is in the JSON output)")
    parser.add_argument("--faces", choices=SERVED_FACE_DETECTORS, default=None,
                        help="score faces found by this detector instead of the image (default: serve.face_detector)")
    parser.add_argument("--face-crop", choices=FACE_CROPS, default=None,
                        help="how a face is cropped: native (at the image's resolution) or aligned "
                             "(default: serve.face_crop)")
    # Also accepted after the subcommand; the top-level --root sets the default.
    parser.add_argument("--root", type=Path, default=argparse.SUPPRESS,
                        help="repository root holding config/config.yaml and params.yaml (default: .)")


def run(args: argparse.Namespace) -> int:
    """The subcommand: exit 0 when every image was scored, 1 when some failed, 2 for usage or model errors."""
    from deepfake_detector.logging_config import configure_logging

    configure_logging(log_dir=None, level=os.environ.get("DEEPFAKE_DETECTOR_LOG_LEVEL", "WARNING"))
    output_format = None
    if args.output is not None:
        output_format = OUTPUT_FORMATS.get(args.output.suffix.lower())
        if output_format is None:
            return _usage_error(f"--output {args.output}: the file name must end in .csv or .json")
    inputs = collect_images(args.paths, recursive=args.recursive)
    if not inputs.images and not inputs.missing:
        return _usage_error("no images or videos found in " + ", ".join(str(path) for path in args.paths)
                            + f" (looked for {', '.join(sorted(MEDIA_EXTENSIONS))})")
    try:
        service = load_service(args.root, face_detector=args.faces, face_crop=args.face_crop)
    except (ModelError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        if isinstance(error, ModelError):
            print("No usable model to score with: fix what the line above names (`make run` trains and exports "
                  "one), or point DEEPFAKE_DETECTOR_MODEL / DEEPFAKE_DETECTOR_EXPORT_DIR at another.", file=sys.stderr)
        return EXIT_USAGE
    _print_model(service)

    report = Report(failures=[{"path": str(path), "error": f"{path}: no such file or folder"}
                              for path in inputs.missing])
    with tqdm(inputs.images, desc="scoring", unit="file", file=sys.stderr, disable=not inputs.has_folder) as bar:
        for path in bar:
            score_file(service, path, args.explain, report)

    if args.output is not None:
        write_text_atomic(args.output, render(service, report, output_format))
    sys.stdout.write(render(service, report, args.format))
    _print_summary(report, args.output)
    return EXIT_FAILED_FILES if report.failures else EXIT_OK


def load_service(root: Path, face_detector: str | None = None, face_crop: str | None = None) -> DetectionService:
    """The same DetectionService the web app builds, with the DEEPFAKE_DETECTOR_* overrides applied, then the
    command line's face options (when given)."""
    import dataclasses

    from deepfake_detector.config import ConfigurationManager
    from deepfake_detector.serving.service import DetectionService
    from deepfake_detector.serving.settings import FACE_DETECTOR_ENV

    config = ConfigurationManager(root=root).get_serving_config()
    if face_crop is not None:
        config = dataclasses.replace(config, face_crop=face_crop)
    environ = dict(os.environ)
    if face_detector is not None:
        environ[FACE_DETECTOR_ENV] = face_detector  # the option outranks the variable, as in gunicorn's
    return DetectionService.from_config(config, environ)


def collect_images(paths: Iterable[Path], recursive: bool = True) -> Inputs:
    """Files as given (whatever their suffix: the decoder judges them), and the image files in folders.

    A folder's files are sorted by relative path so runs are repeatable; hidden files and folders
    (".DS_Store", macOS "._photo.jpg" forks) are skipped. A file reached twice is scored once.
    """
    inputs = Inputs()
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            inputs.images.append(path)

    for path in paths:
        if path.is_dir():
            inputs.has_folder = True
            for found in _images_in_folder(path, recursive):
                add(found)
        elif path.is_file():
            add(path)
        else:
            inputs.missing.append(path)
    return inputs


def _images_in_folder(folder: Path, recursive: bool) -> list[Path]:
    found = []
    for directory, subfolders, files in os.walk(folder):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")] if recursive else []
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in MEDIA_EXTENSIONS:
                found.append(Path(directory, name))
    return sorted(found, key=lambda path: path.relative_to(folder).parts)


def score_file(service: DetectionService, path: Path, explain: bool, report: Report) -> None:
    """Score one file into report; an unreadable or undecodable file becomes a failure, not an exit."""
    name = str(path)
    try:
        size = path.stat().st_size
        limit = service.config.max_request_bytes
        if size > limit:
            raise ImageError(f"{name}: {size:,} bytes is too large (at most {limit:,})")
        data = path.read_bytes()
        analysis = service.analyze_upload(data, name, explain=explain)
    except ImageError as error:
        report.failures.append({"path": name, "error": str(error)})
    except OSError as error:
        report.failures.append({"path": name, "error": f"{name}: cannot read: {error.strerror or error}"})
    else:
        report.results.append(analysis)


def as_document(service: DetectionService, report: Report) -> dict[str, Any]:
    """The JSON report: the API's response shape, each result with its path, plus the failures."""
    return {**service.answer_header(),
            "results": [{"path": analysis.filename, **analysis.as_api_dict()} for analysis in report.results],
            "failures": report.failures}


def render(service: DetectionService, report: Report, output_format: str) -> str:
    if output_format == "json":
        return json.dumps(as_document(service, report), indent=2) + "\n"
    if output_format == "csv":
        return _csv(report)
    return _table(report.results)


def _csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for analysis in report.results:
        is_video = _is_video(analysis)
        heatmap = None if is_video else analysis.heatmap
        writer.writerow({
            "path": analysis.filename, "kind": "video" if is_video else "image", "label": analysis.label,
            # repr keeps every digit, so the CSV round-trips to the exact probability.
            "fake_probability": repr(analysis.fake_probability), "threshold": repr(analysis.threshold),
            "scored_region": analysis.scored_region, "faces": _face_count(analysis),
            "frames": len(analysis.frames) if is_video else "",
            "width": analysis.width, "height": analysis.height, "total_ms": analysis.timings.total,
            "heatmap_method": heatmap.method if heatmap is not None else "",
            "model_version": analysis.model_version, "error": "",
        })
    for failure in report.failures:
        writer.writerow({"path": failure["path"], "error": failure["error"]})
    return buffer.getvalue()


def _is_video(analysis: ImageAnalysis | VideoAnalysis) -> bool:
    return hasattr(analysis, "frames")


def _face_count(analysis: ImageAnalysis | VideoAnalysis) -> int:
    """Faces scored in an image; frames with a face in a video."""
    return analysis.frames_with_face if _is_video(analysis) else len(analysis.faces)


def _table(results: Sequence[ImageAnalysis | VideoAnalysis]) -> str:
    header = ("path", "label", "fake_probability", "faces", "ms")
    rows = [(analysis.filename, analysis.label, f"{analysis.fake_probability:.4f}",
             f"{analysis.frames_with_face}/{len(analysis.frames)} frames" if _is_video(analysis)
             else str(len(analysis.faces)), f"{analysis.timings.total:.1f}") for analysis in results]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _print_model(service: DetectionService, stream: TextIO | None = None) -> None:
    """Which model scores, how it decides, what it was trained on, and the demo-data notice if it applies."""
    stream = stream or sys.stderr
    print(f"model {service.model_version} ({service.backend} {service.variant}), "
          f"fake at P(fake) >= {service.threshold:.4f}", file=stream)
    print(f"trained on: {service.training_data.describe()}", file=stream)
    if service.training_data.notice:
        print(f"notice: {service.training_data.notice}", file=stream)


def _print_summary(report: Report, output: Path | None, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    fakes = sum(analysis.is_fake for analysis in report.results)
    videos = sum(_is_video(analysis) for analysis in report.results)
    scored = f"{len(report.results) - videos} image(s)" + (f" and {videos} video(s)" if videos else "")
    line = f"scored {scored}: {fakes} fake, {len(report.results) - fakes} real"
    if report.failures:
        line += f"; {len(report.failures)} failed"
    print(line, file=stream)
    if output is not None:
        print(f"wrote {output}", file=stream)
    if report.failures:
        print("failed:", file=stream)
        for failure in report.failures:
            print(f"  {failure['error']}", file=stream)


def _usage_error(message: str) -> int:
    print(f"deepfake-detector predict: error: {message}", file=sys.stderr)
    return EXIT_USAGE

