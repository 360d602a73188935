"""The ingest stage's worker: fetch data.source, recognize its layout, and write the raw dataset
tree, an index of its candidate images and a report.

A list in data.source is fetched entry by entry, each into its own sub-folder (sources.source_folder),
and the index gets a `source` column naming the entry of every image.
Outputs appear only when the whole ingest succeeds; a failed run leaves the previous ones intact.
"""
from __future__ import annotations

import csv
import io
import logging
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deepfake_detector.components.data.layouts import SOURCE_COLUMN, DatasetListing, Record, list_dataset
from deepfake_detector.components.data.sources import (
    FetchResult,
    Source,
    fetch_source,
    resolve_source,
    source_folder,
)
from deepfake_detector.config.entities import DataIngestionConfig
from deepfake_detector.contracts.errors import IngestionError
from deepfake_detector.contracts.labels import CLASS_NAMES
from deepfake_detector.utils.files import atomic_directory, write_json_atomic, write_text_atomic
from deepfake_detector.utils.redaction import displayable_source

logger = logging.getLogger(__name__)

INDEX_COLUMNS = ("path", "class_name", "split")
MULTI_SOURCE = "multi_source"  # the layout ingest.json names when data.source is a list


@dataclass(frozen=True)
class IngestionResult:
    dataset_dir: Path
    index_file: Path
    report_file: Path
    layout: str
    n_files: int
    class_counts: Mapping[str, int]


@dataclass(frozen=True)
class IngestedSource:
    """One entry of a data.source list, fetched and listed in its own sub-folder of the dataset."""

    name: str  # index.csv's source column: the entry as written, URLs redacted
    folder: str
    source: Source
    fetched: FetchResult
    listing: DatasetListing


class DataIngestion:
    def __init__(self, config: DataIngestionConfig) -> None:
        self.config = config

    def run(self) -> IngestionResult:
        config = self.config
        if config.is_multi_source:
            return self._run_many()
        source = resolve_source(config.source)
        logger.info("Ingesting %s (%s)", source.display, source.kind)
        config.root_dir.mkdir(parents=True, exist_ok=True)
        # The tree is built in a staging folder and swapped in only once it is known to be usable.
        with tempfile.TemporaryDirectory(prefix=".ingest-", dir=config.root_dir) as work_dir, \
                atomic_directory(config.dataset_dir) as staging:
            fetched = fetch_source(source, staging, Path(work_dir), config)
            try:
                listing = list_dataset(staging, config.class_names)
                check_classes(listing)
            except IngestionError as error:
                raise IngestionError(f"data.source {source.display!r}: {error}") from None
        write_text_atomic(config.index_file, render_index(listing.records))
        write_json_atomic(config.report_file, build_report(source, fetched, listing))
        logger.info("Ingested %d files (%s layout): %s", listing.n_files, listing.layout,
                    ", ".join(f"{name} {count}" for name, count in listing.class_counts.items()))
        return IngestionResult(config.dataset_dir, config.index_file, config.report_file, listing.layout,
                               listing.n_files, listing.class_counts)

    def _run_many(self) -> IngestionResult:
        """Every entry of the data.source list, each with both classes, or nothing at all."""
        config = self.config
        names = config.source_names or tuple(displayable_source(entry) for entry in config.training_sources)
        # Every entry is resolved before anything is fetched: a typo in the last one fails at once.
        sources = [resolve_source(entry, f"data.source[{index}]")
                   for index, entry in enumerate(config.training_sources)]
        config.root_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".ingest-", dir=config.root_dir) as work_dir, \
                atomic_directory(config.dataset_dir) as staging:
            ingested = [self._ingest_one(index, source, name, checksum, staging, Path(work_dir))
                        for index, (source, name, checksum)
                        in enumerate(zip(sources, names, config.checksums, strict=True))]
        rows = [(f"{part.folder}/{record.path}", record.class_name, record.split, part.name)
                for part in ingested for record in part.listing.records]
        write_text_atomic(config.index_file, render_rows((*INDEX_COLUMNS, SOURCE_COLUMN), rows))
        report = build_multi_source_report(ingested)
        write_json_atomic(config.report_file, report)
        logger.info("Ingested %d files from %d sources: %s", report["n_files"], len(ingested),
                    ", ".join(f"{name} {count}" for name, count in report["class_counts"].items()))
        return IngestionResult(config.dataset_dir, config.index_file, config.report_file, MULTI_SOURCE,
                               report["n_files"], report["class_counts"])

    def _ingest_one(self, index: int, source: Source, name: str, checksum: str | None, staging: Path,
                    work_dir: Path) -> IngestedSource:
        folder = source_folder(index, source)
        logger.info("Ingesting data.source[%d] %s (%s) into %s/", index, source.display, source.kind, folder)
        (staging / folder).mkdir()
        (work_dir / folder).mkdir()
        try:
            fetched = fetch_source(source, staging / folder, work_dir / folder, replace(self.config, sha256=checksum))
            listing = list_dataset(staging / folder, self.config.class_names)
            check_classes(listing)
        except IngestionError as error:
            raise type(error)(f"data.source[{index}] {source.display!r}: {error}") from None
        logger.info("data.source[%d]: %d files (%s layout): %s", index, listing.n_files, listing.layout,
                    ", ".join(f"{label} {count}" for label, count in listing.class_counts.items()))
        return IngestedSource(name, folder, source, fetched, listing)


def check_classes(listing: DatasetListing) -> None:
    """Refuse a dataset that could not train a two-class detector."""
    counts = listing.class_counts
    if not counts:
        raise IngestionError(f"the dataset is empty: the {listing.layout} layout was recognized but "
                             "holds no files")
    known = {name: counts[name] for name in CLASS_NAMES.values() if name in counts}
    if len(known) < len(CLASS_NAMES):
        found = ", ".join(f"{name} ({count} files)" for name, count in known.items()) or "neither class"
        unmapped = sorted(set(counts) - set(known))
        hint = (f"; labels {unmapped} map to no class: list them under params.yaml data.class_names"
                if unmapped else "")
        raise IngestionError(f"the dataset needs both fake and real images, found {found}{hint}")


def render_index(records: tuple[Record, ...]) -> str:
    return render_rows(INDEX_COLUMNS, [(record.path, record.class_name, record.split) for record in records])


def render_rows(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def build_report(source: Source, fetched: FetchResult, listing: DatasetListing) -> dict[str, Any]:
    return {
        "source": source.display,
        "kind": fetched.kind,
        "layout": listing.layout,
        "dataset_root": listing.base,
        "archive_sha256": fetched.archive_sha256,
        "n_files": listing.n_files,
        "class_counts": listing.class_counts,
        "unlisted_files": len(listing.unlisted),
        "warnings": list(listing.warnings),
    }


def build_multi_source_report(ingested: list[IngestedSource]) -> dict[str, Any]:
    """ingest.json of a data.source list: the totals, then each entry's own report (as one source's
    ingest.json would read) with its name and sub-folder."""
    counts: Counter[str] = Counter()
    for part in ingested:
        counts.update(part.listing.class_counts)
    return {
        "source": " + ".join(part.name for part in ingested),
        "layout": MULTI_SOURCE,
        "n_files": sum(part.listing.n_files for part in ingested),
        "class_counts": dict(sorted(counts.items())),
        "unlisted_files": sum(len(part.listing.unlisted) for part in ingested),
        "warnings": [f"{part.name}: {warning}" for part in ingested for warning in part.listing.warnings],
        "sources": [{**build_report(part.source, part.fetched, part.listing), "source": part.name,
                     "folder": part.folder} for part in ingested],
    }
