"""The ingest stage's worker: fetch data.source, recognize its layout, and write the raw dataset
tree, an index of its candidate images and a report.

Outputs appear only when the whole ingest succeeds; a failed run leaves the previous ones intact.
"""
from __future__ import annotations

import csv
import io
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_detector.components.data.layouts import DatasetListing, Record, list_dataset
from deepfake_detector.components.data.sources import FetchResult, Source, fetch_source, resolve_source
from deepfake_detector.config.entities import DataIngestionConfig
from deepfake_detector.contracts.errors import IngestionError
from deepfake_detector.contracts.labels import CLASS_NAMES
from deepfake_detector.utils.files import atomic_directory, write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

INDEX_COLUMNS = ("path", "class_name", "split")


@dataclass(frozen=True)
class IngestionResult:
    dataset_dir: Path
    index_file: Path
    report_file: Path
    layout: str
    n_files: int
    class_counts: Mapping[str, int]


class DataIngestion:
    def __init__(self, config: DataIngestionConfig) -> None:
        self.config = config

    def run(self) -> IngestionResult:
        config = self.config
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
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    writer.writerows((record.path, record.class_name, record.split) for record in records)
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
