"""Safe extraction: hostile archives are refused, nothing lands outside the ingestion folder, and
a refused archive leaves no dataset behind."""
from __future__ import annotations

import io
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from deepfake_detector.components.data.ingestion import DataIngestion
from deepfake_detector.contracts.errors import IngestionError, UnsafeArchiveError
from tests.unit.ingest_fixtures import files_under, image_bytes, make_config

GOOD_MEMBERS = [("fake/a.jpg", image_bytes(1)), ("real/b.jpg", image_bytes(2))]


def build_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as handle:
        for name, data in members:
            handle.writestr(name, data)
    return path


def build_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    """A .tar.gz from (name, data) files and ready-made special TarInfo entries, in order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as handle:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                handle.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                handle.addfile(info, io.BytesIO(data))
    return path


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    return info


def refusal(tmp_path: Path, archive: Path, error: type[IngestionError] = UnsafeArchiveError,
            **config_overrides) -> str:
    """Ingest archive, expect the error, and check that nothing at all was written."""
    config = make_config(tmp_path, archive, **config_overrides)
    with pytest.raises(error) as caught:
        DataIngestion(config).run()
    assert not config.dataset_dir.exists()
    written = [path for path in files_under(tmp_path) if not path.startswith("inputs/")]
    assert written == []
    return str(caught.value)


def test_zip_member_with_parent_path_is_refused(tmp_path: Path) -> None:
    archive = build_zip(tmp_path / "inputs/evil.zip", [*GOOD_MEMBERS, ("../../../escaped.txt", b"x")])
    message = refusal(tmp_path, archive)
    assert "../../../escaped.txt" in message and ".." in message
    assert not (tmp_path / "escaped.txt").exists()


def test_zip_member_with_absolute_path_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "absolute_escape.txt"
    archive = build_zip(tmp_path / "inputs/evil.zip", [*GOOD_MEMBERS, (zipfile.ZipInfo(str(target)), b"x")])
    message = refusal(tmp_path, archive)
    assert "absolute path" in message and str(target) in message
    assert not target.exists()


def test_zip_symlink_member_is_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("real/link.jpg")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = build_zip(tmp_path / "inputs/evil.zip", [*GOOD_MEMBERS, (link, b"/etc/passwd")])
    message = refusal(tmp_path, archive)
    assert "real/link.jpg" in message and "symbolic link" in message


def test_tar_member_with_parent_path_is_refused_after_good_members(tmp_path: Path) -> None:
    archive = build_tar(tmp_path / "inputs/evil.tar.gz", [*GOOD_MEMBERS, ("../../../escaped.txt", b"x")])
    message = refusal(tmp_path, archive)
    assert "../../../escaped.txt" in message
    assert not (tmp_path / "escaped.txt").exists()


def test_tar_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    link = special("real/link.jpg", tarfile.SYMTYPE, linkname=str(tmp_path / "outside.jpg"))
    archive = build_tar(tmp_path / "inputs/evil.tar.gz", [*GOOD_MEMBERS, link])
    message = refusal(tmp_path, archive)
    assert "real/link.jpg" in message and "symbolic link" in message


def test_tar_hard_link_is_refused(tmp_path: Path) -> None:
    link = special("real/hard.jpg", tarfile.LNKTYPE, linkname="/etc/passwd")
    archive = build_tar(tmp_path / "inputs/evil.tar.gz", [*GOOD_MEMBERS, link])
    message = refusal(tmp_path, archive)
    assert "real/hard.jpg" in message and "hard link" in message


def test_tar_fifo_member_is_refused(tmp_path: Path) -> None:
    member = special("real/pipe", tarfile.FIFOTYPE)
    archive = build_tar(tmp_path / "inputs/evil.tar.gz", [*GOOD_MEMBERS, member])
    message = refusal(tmp_path, archive)
    assert "real/pipe" in message and "FIFO" in message


def test_tar_device_member_is_refused(tmp_path: Path) -> None:
    member = special("real/null", tarfile.CHRTYPE)
    archive = build_tar(tmp_path / "inputs/evil.tar.gz", [*GOOD_MEMBERS, member])
    message = refusal(tmp_path, archive)
    assert "real/null" in message and "device" in message


def test_archive_with_more_members_than_the_cap_is_refused(tmp_path: Path) -> None:
    members = [(f"fake/{i}.jpg", image_bytes(i)) for i in range(4)] + [("real/r.jpg", image_bytes(9))]
    archive = build_zip(tmp_path / "inputs/many.zip", members)
    message = refusal(tmp_path, archive, max_members=4)
    assert "more than 4 members" in message and "data.max_archive_members" in message


def test_zip_larger_than_the_size_cap_is_refused(tmp_path: Path) -> None:
    archive = build_zip(tmp_path / "inputs/big.zip", [*GOOD_MEMBERS, ("fake/big.bin", bytes(256 * 1024))])
    message = refusal(tmp_path, archive, max_bytes=128 * 1024)
    assert "data.max_extracted_mb" in message


def test_tar_larger_than_the_size_cap_is_refused_while_streaming(tmp_path: Path) -> None:
    members = [*GOOD_MEMBERS, ("fake/one.bin", bytes(96 * 1024)), ("real/two.bin", bytes(96 * 1024))]
    archive = build_tar(tmp_path / "inputs/big.tar.gz", members)
    message = refusal(tmp_path, archive, max_bytes=128 * 1024)
    assert "data.max_extracted_mb" in message


def understate_zip_member_size(archive: Path, member: str, claimed_size: int) -> None:
    """Rewrite the uncompressed size in member's local and central headers, as a zip bomb would."""
    data = bytearray(archive.read_bytes())
    name = member.encode()
    for signature, size_offset, name_offset in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = data.find(signature)
        while start != -1:
            if data[start + name_offset:start + name_offset + len(name)] == name:
                data[start + size_offset:start + size_offset + 4] = struct.pack("<I", claimed_size)
            start = data.find(signature, start + 1)
    archive.write_bytes(bytes(data))


def test_zip_whose_headers_understate_sizes_is_refused(tmp_path: Path) -> None:
    archive = build_zip(tmp_path / "inputs/bomb.zip", [*GOOD_MEMBERS, ("fake/bomb.bin", bytes(512 * 1024))])
    understate_zip_member_size(archive, "fake/bomb.bin", 100)
    message = refusal(tmp_path, archive, error=IngestionError, max_bytes=128 * 1024)
    assert "bomb.zip" in message


def test_truncated_archive_is_refused_as_damaged(tmp_path: Path) -> None:
    members = [(f"fake/{i}.bin", bytes(range(256)) * 64) for i in range(4)] + GOOD_MEMBERS
    archive = build_tar(tmp_path / "inputs/cut.tar.gz", members)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    message = refusal(tmp_path, archive, error=IngestionError)
    assert "cut.tar.gz" in message and ("corrupt" in message or "damaged" in message)


def test_file_that_is_no_archive_is_refused_despite_its_suffix(tmp_path: Path) -> None:
    archive = tmp_path / "inputs/fake.zip"
    archive.parent.mkdir()
    archive.write_text("not an archive")
    message = refusal(tmp_path, archive, error=IngestionError)
    assert "fake.zip" in message and "not a readable zip or tar archive" in message


def test_archive_tree_is_kept_as_delivered(tmp_path: Path) -> None:
    archive = build_zip(tmp_path / "inputs/ok.zip", [("faces/fake/a.jpg", image_bytes(1)),
                                                      ("faces/real/b.jpg", image_bytes(2))])
    config = make_config(tmp_path, archive)
    DataIngestion(config).run()
    assert files_under(config.dataset_dir) == ["faces/fake/a.jpg", "faces/real/b.jpg"]
    assert (config.dataset_dir / "faces/fake/a.jpg").read_bytes() == image_bytes(1)
