"""Atomic writes: readers never see half a file, and what lands has ordinary permissions."""
import os
import stat

import pytest

from deepfake_detector.utils.files import atomic_directory, atomic_path, write_text_atomic


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_atomic_file_gets_umask_permissions_not_private_ones(tmp_path, umask_022):
    target = write_text_atomic(tmp_path / "scores.json", "{}")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_directory_gets_umask_permissions(tmp_path, umask_022):
    with atomic_directory(tmp_path / "export") as staging:
        (staging / "model.tflite").write_bytes(b"x")
    assert stat.S_IMODE((tmp_path / "export").stat().st_mode) == 0o755


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = write_text_atomic(tmp_path / "model.h5", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.h5"]


def test_failed_directory_build_keeps_the_previous_directory(tmp_path):
    with atomic_directory(tmp_path / "export") as staging:
        (staging / "model_card.json").write_text("v1")
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "export") as staging:
        (staging / "model_card.json").write_text("v2")
        raise RuntimeError("gate failed")
    assert (tmp_path / "export" / "model_card.json").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
