"""Resolve params.yaml's data.source and fetch it into a staging folder.

A source is the built-in demo generator (demo, or demo:<style> for one of its styles; demo-video or
demo-video:<style> for the same scenes as video clips), a local folder or archive (also as a file://
URL), an http(s):// URL to an archive, or a Kaggle dataset (kaggle:<owner>/<dataset>).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import requests
from tqdm import tqdm

from deepfake_detector.components.data.archives import (
    ARCHIVE_SUFFIXES,
    ExtractionLimits,
    extract_archive,
    has_archive_suffix,
)
from deepfake_detector.components.data.downloads import DownloadLimits, check_redirects, download, download_name
from deepfake_detector.config.entities import DataIngestionConfig, DemoDataConfig
from deepfake_detector.contracts.demo_sources import DEMO_VIDEO
from deepfake_detector.contracts.errors import IngestionError
from deepfake_detector.utils.files import sha256_file
from deepfake_detector.utils.redaction import redact_url

logger = logging.getLogger(__name__)

SourceKind = Literal["demo", "demo_video", "folder", "archive", "url", "kaggle"]

FOLDER_NAME_LENGTH = 40  # characters of an entry's name kept in its sub-folder's name
ACCEPTED_SOURCES = ("demo (or demo:<style>), demo-video (or demo-video:<style>), a folder, a "
                    + "/".join(ARCHIVE_SUFFIXES) + " archive, a file:// or http(s):// URL to one, or "
                    "kaggle:<owner>/<dataset>")
_KAGGLE_HANDLE = re.compile(r"^[\w.-]+/[\w.-]+(/versions/\d+)?$")
KAGGLE_CREDENTIALS_HELP = (
    "{source} needs Kaggle credentials and none were found. Set KAGGLE_API_TOKEN (or KAGGLE_USERNAME "
    "and KAGGLE_KEY) in the environment, or save kaggle.json in ~/.kaggle/ (or $KAGGLE_CONFIG_DIR); a "
    "token is created at https://www.kaggle.com/settings/api. Or download the dataset's zip yourself "
    "and set params.yaml data.source to its path.")


@dataclass(frozen=True)
class Source:
    kind: SourceKind
    location: str  # what fetching uses: a local path, the URL, the Kaggle handle, or the demo style
    #                ("" for the demo's configured style)
    display: str  # safe to log and to report: no credentials, no query string


@dataclass(frozen=True)
class FetchResult:
    kind: SourceKind
    archive_sha256: str | None = None


def resolve_source(source: str, setting: str = "data.source") -> Source:
    """Decide what kind of source the params.yaml key setting names, without fetching anything;
    errors name that key."""
    text = source.strip()
    if text.lower() == "demo":
        return Source("demo", "", "demo")
    if text.lower().startswith("demo:"):
        return _demo_source(text, setting)
    if text.lower() == DEMO_VIDEO:
        return Source("demo_video", "", DEMO_VIDEO)
    if text.lower().startswith(f"{DEMO_VIDEO}:"):
        style = _demo_style(text, text[len(DEMO_VIDEO) + 1:], setting)
        return Source("demo_video", style, f"{DEMO_VIDEO}:{style}")
    if text.lower().startswith("kaggle:"):
        handle = text[len("kaggle:"):].strip().strip("/")
        if not _KAGGLE_HANDLE.match(handle):
            raise IngestionError(f"params.yaml: {setting} {text!r}: expected kaggle:<owner>/<dataset> "
                                 "(optionally /versions/<n>)")
        return Source("kaggle", handle, f"kaggle:{handle}")
    if "://" in text:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            return Source("url", text, redact_url(text))
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise IngestionError(f"params.yaml: {setting} {text!r}: only local file:// URLs are "
                                     "supported (no host name)")
            return _local_source(Path(url2pathname(unquote(parts.path))), f"file://{parts.path}", setting)
        raise IngestionError(f"params.yaml: {setting} {redact_url(text)!r}: unsupported URL scheme "
                             f"{parts.scheme!r}; expected {ACCEPTED_SOURCES}")
    if not text:
        raise IngestionError(f"params.yaml: {setting} is empty; expected {ACCEPTED_SOURCES}")
    return _local_source(Path(text).expanduser(), text, setting)


def _demo_source(text: str, setting: str) -> Source:
    style = _demo_style(text, text[len("demo:"):], setting)
    return Source("demo", style, f"demo:{style}")


def _demo_style(text: str, style: str, setting: str) -> str:
    # Imported here: only the demo sources need the generator (and its image dependencies).
    from deepfake_detector.components.data.demo_data import DEMO_STYLES

    style = style.strip().lower()
    if style not in DEMO_STYLES:
        kind = text.split(":", 1)[0].lower()
        raise IngestionError(f"params.yaml: {setting} {text!r}: unknown demo style {style!r}; expected "
                             f"{kind} or {kind}:<style> with a style among {', '.join(DEMO_STYLES)}")
    return style


def _local_source(path: Path, display: str, setting: str) -> Source:
    if path.is_dir():
        return Source("folder", str(path), display)
    if path.is_file():
        if has_archive_suffix(path):
            return Source("archive", str(path), display)
        raise IngestionError(f"params.yaml: {setting} {display!r} is a file but not a supported archive; "
                             f"expected {ACCEPTED_SOURCES}")
    raise IngestionError(f"params.yaml: {setting} {display!r}: no such file or folder (relative paths "
                         f"are relative to the repository root); expected {ACCEPTED_SOURCES}")


def source_folder(index: int, source: Source) -> str:
    """The sub-folder of the dataset that entry index of a data.source list is fetched into, e.g.
    `00-demo`, `01-demo-b`, `02-hardfake`: its position keeps it unique, the entry's name readable, and it
    depends on nothing but the entry, so the paths in index.csv and the manifest are stable."""
    if source.kind in ("demo", "demo_video"):
        kind = "demo" if source.kind == "demo" else DEMO_VIDEO
        name = f"{kind}-{source.location}" if source.location else kind
    elif source.kind == "kaggle":
        name = source.location
    else:
        name = PurePosixPath(urlsplit(source.display).path).name if source.kind == "url" else Path(source.location).name
        name = next((name[:-len(suffix)] for suffix in ARCHIVE_SUFFIXES if name.lower().endswith(suffix)), name)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:FOLDER_NAME_LENGTH]
    return f"{index:02d}-{slug or source.kind}"


def fetch_source(source: Source, staging: Path, work_dir: Path, config: DataIngestionConfig) -> FetchResult:
    """Put the dataset tree, as delivered, into staging (an empty folder the caller owns).

    work_dir holds downloads while they are needed; the caller removes it afterwards.
    """
    if config.sha256 and source.kind not in ("archive", "url"):
        raise IngestionError(f"params.yaml: data.sha256 is set, but data.source {source.display!r} is "
                             f"a {source.kind}, not an archive; set data.sha256 to null")
    limits = ExtractionLimits(config.max_archive_members, config.max_extracted_bytes)
    if source.kind == "demo":
        demo = replace(config.demo, style=source.location) if source.location else config.demo
        generate_demo(demo, staging)
        return FetchResult("demo")
    if source.kind == "demo_video":
        demo = replace(config.demo, style=source.location) if source.location else config.demo
        generate_demo_clips(demo, staging)
        return FetchResult("demo_video")
    if source.kind == "folder":
        copy_folder(Path(source.location), staging)
        return FetchResult("folder")
    if source.kind == "archive":
        archive = Path(source.location)
        digest = sha256_file(archive)
        check_sha256(digest, config.sha256, source.display)
        extract_archive(archive, staging, limits)
        return FetchResult("archive", archive_sha256=digest)
    downloads = DownloadLimits(config.max_download_bytes, config.max_download_s, config.download_timeout_s,
                               config.allow_http)
    if source.kind == "url":
        archive = work_dir / download_name(source.location)
        digest = download(source.location, archive, downloads)
        check_sha256(digest, config.sha256, source.display)
        extract_archive(archive, staging, limits)
        return FetchResult("url", archive_sha256=digest)
    url = kaggle_archive_url(source.location, downloads)
    archive = work_dir / f"{source.location.replace('/', '-')}.zip"
    download(url, archive, downloads, display=source.display)
    extract_archive(archive, staging, limits)
    return FetchResult("kaggle")


def check_sha256(actual: str, expected: str | None, what: str) -> None:
    if expected and actual != expected.lower():
        raise IngestionError(f"{what}: sha256 is {actual}, but params.yaml data.sha256 expects {expected}; "
                             "the file is damaged or not the one expected")


def generate_demo(config: DemoDataConfig, staging: Path) -> None:
    # Imported here: only the demo source needs the generator (and its image dependencies).
    from deepfake_detector.components.data.demo_data import generate_demo_dataset

    logger.info("Generating the built-in demo dataset (style %s, %d images per class)", config.style,
                config.images_per_class)
    generate_demo_dataset(config, staging)


def generate_demo_clips(config: DemoDataConfig, staging: Path) -> None:
    # Imported here: only this source needs the video encoder.
    from deepfake_detector.components.data.demo_video import generate_demo_videos

    logger.info("Generating the built-in demo video dataset (style %s, %d clips of %g s per class)", config.style,
                config.videos_per_class, config.video_seconds)
    generate_demo_videos(config, staging, config.videos_per_class, seconds=config.video_seconds)


def copy_folder(source_dir: Path, target: Path) -> None:
    """Copy a folder's content into target as real files (links are followed, never copied)."""
    source_dir = source_dir.resolve()
    if target.resolve().is_relative_to(source_dir):
        raise IngestionError(f"data.source {source_dir} contains the ingestion output folder "
                             f"{target.parent}; point data.source at the dataset folder itself")
    total = sum(len(files) for _, _, files in os.walk(source_dir))
    logger.info("Copying %d files from %s", total, source_dir)
    with tqdm(total=total, desc=f"Copying {source_dir.name}", unit="file", leave=False) as bar:
        def copy_one(src: str, dst: str) -> str:
            result = shutil.copy2(src, dst)
            bar.update(1)
            return result

        try:
            shutil.copytree(source_dir, target, symlinks=False, ignore_dangling_symlinks=True,
                            copy_function=copy_one, dirs_exist_ok=True)
        except (shutil.Error, OSError) as error:
            raise IngestionError(f"could not copy {source_dir}: {error}") from None


def kaggle_archive_url(handle: str, limits: DownloadLimits) -> str:
    """Where Kaggle serves the dataset's zip bundle: a short-lived signed URL, asked of the Kaggle API with
    the user's credentials. The bundle is then downloaded and unpacked like any other URL's archive, within
    the same limits (kagglehub's own download would unpack it with no caps and cache the whole tree)."""
    # Imported here: kagglehub is only needed for this source. The `kaggle` package is never
    # imported, as it prints an authentication error at import time.
    from kagglehub.clients import build_kaggle_client
    from kagglehub.config import get_kaggle_credentials
    from kagglehub.exceptions import handle_call
    from kagglehub.handle import parse_dataset_handle
    from kagglesdk.datasets.types.dataset_api_service import ApiDownloadDatasetRequest

    source = f"kaggle:{handle}"
    try:
        credentials = get_kaggle_credentials()
    except ValueError as error:
        raise IngestionError(f"{source}: Kaggle credentials could not be read: {error}") from None
    if credentials is None:
        raise IngestionError(KAGGLE_CREDENTIALS_HELP.format(source=source))
    dataset = parse_dataset_handle(handle)
    request = ApiDownloadDatasetRequest()
    request.owner_slug, request.dataset_slug = dataset.owner, dataset.dataset
    if dataset.is_versioned():
        request.dataset_version_number = dataset.version
    logger.info("Asking Kaggle for %s", source)
    try:
        with build_kaggle_client() as client:
            # The API answers with a redirect to the bundle, which the client follows: only the headers are read.
            with handle_call(lambda: client.datasets.dataset_api_client.download_dataset(request),
                             dataset) as response:
                chain = [hop.url for hop in response.history] + [response.url]
    except (requests.RequestException, OSError, ValueError) as error:  # HTTP errors come as KaggleApiHTTPError
        raise IngestionError(f"{source}: download failed ({type(error).__name__}: {error}). Check the "
                             "dataset handle, your credentials and the connection, or download the dataset's "
                             "zip yourself and set params.yaml data.source to its path") from None
    check_redirects(chain, limits, source)
    return chain[-1]
