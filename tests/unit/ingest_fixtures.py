"""Small datasets, archives and configs for the ingestion tests, built on the fly with Pillow."""
from __future__ import annotations

import csv
import io
import json
import tarfile
import zipfile
from pathlib import Path
from types import MappingProxyType

from PIL import Image

from deepfake_detector.components.data.ingestion import DataIngestion, IngestionResult
from deepfake_detector.config.entities import DataIngestionConfig, DemoDataConfig

CLASS_NAMES = MappingProxyType({"fake": ("fake",), "real": ("real",)})


def make_config(tmp_path: Path, source: str | Path, *, sha256: str | None = None, max_members: int = 1000,
                max_bytes: int = 20 * 2**20, timeout_s: float = 5.0,
                class_names: dict[str, tuple[str, ...]] | None = None, **fields) -> DataIngestionConfig:
    """fields: any other DataIngestionConfig field (e.g. allow_http=True for a loopback server)."""
    root = tmp_path / "artifacts" / "data_ingestion"
    return DataIngestionConfig(
        root_dir=root,
        dataset_dir=root / "dataset",
        index_file=root / "index.csv",
        report_file=root / "ingest.json",
        source=str(source),
        sha256=sha256,
        class_names=MappingProxyType(class_names) if class_names else CLASS_NAMES,
        max_archive_members=max_members,
        max_extracted_bytes=max_bytes,
        download_timeout_s=timeout_s,
        demo=DemoDataConfig(seed=0, images_per_class=4, image_size=32, fingerprint_strength=0.06,
                            sensor_noise=0.02, jpeg_quality_min=75, jpeg_quality_max=95),
        **fields,
    )


def ingest(tmp_path: Path, source: str | Path, **config_overrides) -> IngestionResult:
    return DataIngestion(make_config(tmp_path, source, **config_overrides)).run()


def image_bytes(seed: int = 0, size: int = 32) -> bytes:
    image = Image.new("RGB", (size, size), ((seed * 53) % 256, (seed * 97) % 256, (seed * 29) % 256))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def write_image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(seed))
    return path


def make_class_folders(root: Path, counts: dict[str, int] | None = None) -> Path:
    """root/<folder>/img_<i>.jpg for each folder name in counts (default: 3 fake, 2 real)."""
    for seed_offset, (folder, count) in enumerate((counts or {"fake": 3, "real": 2}).items()):
        for index in range(count):
            write_image(root / folder / f"img_{index}.jpg", seed=seed_offset * 100 + index)
    root.mkdir(parents=True, exist_ok=True)
    return root


def make_hardfake(root: Path, rows: list[tuple[str, str]] | None = None) -> Path:
    """HardFake's layout: data.csv (images_id,label) beside fake/ and real/ holding <id>.jpg."""
    rows = rows if rows is not None else [("f1", "fake"), ("f2", "fake"), ("r1", "real"), ("r2", "real")]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "data.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["images_id", "label"])
        writer.writerows(rows)
    for seed, (image_id, label) in enumerate(rows):
        name = image_id if image_id.endswith(".jpg") else f"{image_id}.jpg"
        write_image(root / label.lower() / name, seed=seed)
    return root


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        for path in sorted(folder.rglob("*")):
            handle.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


def tar_folder(folder: Path, archive: Path, mode: str = "w:gz", prefix: str = "") -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, mode) as handle:
        for path in sorted(folder.rglob("*")):
            handle.add(path, prefix + path.relative_to(folder).as_posix(), recursive=False)
    return archive


def read_index(index_file: Path) -> list[dict[str, str]]:
    with open(index_file, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_report(report_file: Path) -> dict:
    return json.loads(report_file.read_text(encoding="utf-8"))


def files_under(root: Path) -> list[str]:
    """Every file or link below root (hidden ones too), relative and sorted."""
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())
