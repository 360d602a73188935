"""Every kind of data.source: demo, folder, archive, file:// and http(s):// URLs, and Kaggle.

The http tests serve archives from a ThreadingHTTPServer on 127.0.0.1 (plain http, so allow_http is on);
nothing leaves the machine. The download limits and the Kaggle bundle have their own file, test_downloads.py.
"""
from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from deepfake_detector.components.data.demo_data import generate_demo_dataset
from deepfake_detector.components.data.demo_video import render_demo_video
from deepfake_detector.components.data.ingestion import DataIngestion
from deepfake_detector.contracts.errors import IngestionError
from deepfake_detector.contracts.labels import FAKE
from tests.unit.ingest_fixtures import (
    files_under,
    ingest,
    make_class_folders,
    make_config,
    read_index,
    read_report,
    tar_folder,
    zip_folder,
)


@pytest.fixture
def dataset_folder(tmp_path: Path) -> Path:
    return make_class_folders(tmp_path / "inputs" / "faces")


@pytest.fixture
def dataset_zip(tmp_path: Path, dataset_folder: Path) -> Path:
    return zip_folder(dataset_folder, tmp_path / "inputs" / "faces.zip")


def expect_failure(tmp_path: Path, source: str | Path, **config_overrides) -> str:
    """Ingest, expect IngestionError, and check that no output or partial file was left."""
    config = make_config(tmp_path, source, **config_overrides)
    with pytest.raises(IngestionError) as caught:
        DataIngestion(config).run()
    assert not config.dataset_dir.exists()
    assert files_under(tmp_path / "artifacts") == []
    return str(caught.value)


def test_folder_source_is_copied_into_the_dataset_dir(tmp_path: Path, dataset_folder: Path) -> None:
    result = ingest(tmp_path, dataset_folder)
    assert files_under(result.dataset_dir) == files_under(dataset_folder)
    assert not any(path.is_symlink() for path in result.dataset_dir.rglob("*"))
    assert read_report(result.report_file)["kind"] == "folder"


def test_symlinked_files_in_a_folder_source_are_copied_as_real_files(tmp_path: Path,
                                                                      dataset_folder: Path) -> None:
    (dataset_folder / "real" / "linked.jpg").symlink_to(dataset_folder / "real" / "img_0.jpg")
    result = ingest(tmp_path, dataset_folder)
    copied = result.dataset_dir / "real" / "linked.jpg"
    assert copied.is_file() and not copied.is_symlink()
    assert copied.read_bytes() == (dataset_folder / "real" / "img_0.jpg").read_bytes()


def test_source_folder_that_contains_the_output_folder_is_refused(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "fake_and_real")
    message = expect_failure(tmp_path, tmp_path)
    assert "contains the ingestion output folder" in message


def test_zip_archive_source_is_extracted(tmp_path: Path, dataset_zip: Path) -> None:
    result = ingest(tmp_path, dataset_zip)
    assert files_under(result.dataset_dir) == ["fake/img_0.jpg", "fake/img_1.jpg", "fake/img_2.jpg",
                                               "real/img_0.jpg", "real/img_1.jpg"]
    assert read_report(result.report_file)["kind"] == "archive"


@pytest.mark.parametrize(("name", "mode"),
                         [("faces.tar", "w"), ("faces.tar.gz", "w:gz"), ("faces.tgz", "w:gz")])
def test_tar_archive_sources_are_extracted(tmp_path: Path, dataset_folder: Path, name: str,
                                           mode: str) -> None:
    archive = tar_folder(dataset_folder, tmp_path / "inputs" / name, mode=mode)
    result = ingest(tmp_path, archive)
    assert result.class_counts == {"fake": 3, "real": 2}


def test_file_url_to_an_archive_is_ingested(tmp_path: Path, dataset_zip: Path) -> None:
    result = ingest(tmp_path, dataset_zip.as_uri())
    report = read_report(result.report_file)
    assert report["kind"] == "archive"
    assert report["source"] == dataset_zip.as_uri()
    assert result.n_files == 5


def test_local_archive_checksum_is_reported(tmp_path: Path, dataset_zip: Path) -> None:
    expected = hashlib.sha256(dataset_zip.read_bytes()).hexdigest()
    result = ingest(tmp_path, dataset_zip, sha256=expected)
    assert read_report(result.report_file)["archive_sha256"] == expected


def test_local_archive_with_wrong_checksum_is_refused(tmp_path: Path, dataset_zip: Path) -> None:
    message = expect_failure(tmp_path, dataset_zip, sha256="0" * 64)
    assert "sha256" in message and "0" * 64 in message


def test_checksum_with_a_folder_source_is_refused(tmp_path: Path, dataset_folder: Path) -> None:
    message = expect_failure(tmp_path, dataset_folder, sha256="0" * 64)
    assert "data.sha256" in message and "not an archive" in message


def test_missing_local_path_lists_the_accepted_sources(tmp_path: Path) -> None:
    message = expect_failure(tmp_path, tmp_path / "nowhere.zip")
    assert "nowhere.zip" in message and "no such file or folder" in message and "kaggle:" in message


def test_local_file_that_is_not_an_archive_is_refused(tmp_path: Path) -> None:
    document = tmp_path / "inputs" / "faces.pdf"
    document.parent.mkdir()
    document.write_bytes(b"%PDF")
    message = expect_failure(tmp_path, document)
    assert "faces.pdf" in message and "not a supported archive" in message


def test_unsupported_url_scheme_is_refused(tmp_path: Path) -> None:
    message = expect_failure(tmp_path, "ftp://example.invalid/faces.zip")
    assert "unsupported URL scheme 'ftp'" in message


# --- http(s) ---------------------------------------------------------------------------------

class ArchiveHandler(BaseHTTPRequestHandler):
    """Serves server.routes; /cut/... announces the full length, sends half, then hangs up;
    /slow/... waits before answering."""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        body = self.server.routes.get(path.replace("/cut/", "/").replace("/slow/", "/"))
        if body is None:
            self.send_error(404)
            return
        if path.startswith("/slow/"):
            time.sleep(1.0)
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if path.startswith("/cut/"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (the timeout test): expected, not a server fault

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class' name
        pass


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback requests must not be sent to a proxy configured in the environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def http_server(no_proxy: None) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ArchiveHandler)
    server.daemon_threads = True
    server.routes = {}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def serve(server: ThreadingHTTPServer, archive: Path, route: str = "/faces.zip") -> str:
    server.routes[route] = archive.read_bytes()
    return f"http://127.0.0.1:{server.server_address[1]}{route}"


def test_http_archive_is_downloaded_checked_and_ingested(tmp_path: Path, dataset_zip: Path,
                                                          http_server: ThreadingHTTPServer) -> None:
    url = serve(http_server, dataset_zip)
    expected = hashlib.sha256(dataset_zip.read_bytes()).hexdigest()
    result = ingest(tmp_path, url, sha256=expected, allow_http=True)
    report = read_report(result.report_file)
    assert (report["kind"], report["archive_sha256"], result.n_files) == ("url", expected, 5)
    # The downloaded archive itself is not kept beside the outputs.
    assert not [p for p in files_under(tmp_path / "artifacts") if p.endswith(".zip")]


def test_http_download_with_wrong_checksum_leaves_nothing(tmp_path: Path, dataset_zip: Path,
                                                          http_server: ThreadingHTTPServer) -> None:
    message = expect_failure(tmp_path, serve(http_server, dataset_zip), sha256="f" * 64, allow_http=True)
    assert "sha256" in message and "f" * 64 in message


def test_http_connection_cut_midway_leaves_nothing(tmp_path: Path, dataset_zip: Path,
                                                   http_server: ThreadingHTTPServer) -> None:
    url = serve(http_server, dataset_zip).replace("/faces.zip", "/cut/faces.zip")
    message = expect_failure(tmp_path, url, allow_http=True)
    assert "faces.zip was cut off after" in message


def test_http_error_status_is_reported(tmp_path: Path, http_server: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{http_server.server_address[1]}/missing.zip"
    message = expect_failure(tmp_path, url, allow_http=True)
    assert "HTTP 404" in message


def test_http_download_timeout_names_the_setting(tmp_path: Path, dataset_zip: Path,
                                                 http_server: ThreadingHTTPServer) -> None:
    url = serve(http_server, dataset_zip).replace("/faces.zip", "/slow/faces.zip")
    message = expect_failure(tmp_path, url, timeout_s=0.2, allow_http=True)
    assert "timed out" in message and "data.download_timeout_s" in message


def test_report_keeps_credentials_and_query_out_of_the_url(tmp_path: Path, dataset_zip: Path,
                                                           http_server: ThreadingHTTPServer) -> None:
    url = serve(http_server, dataset_zip).replace("http://", "http://user:hunter2@") + "?token=s3cret"
    result = ingest(tmp_path, url, allow_http=True)
    report_text = result.report_file.read_text()
    assert "hunter2" not in report_text and "s3cret" not in report_text and "user:" not in report_text
    assert read_report(result.report_file)["source"].endswith("/faces.zip")


def test_failed_download_message_keeps_the_query_secret(tmp_path: Path, no_proxy: None) -> None:
    with socket.socket() as probe:  # a port that nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    message = expect_failure(tmp_path, f"http://127.0.0.1:{port}/faces.zip?token=s3cret", allow_http=True)
    assert "s3cret" not in message and "download of" in message


# --- Kaggle ----------------------------------------------------------------------------------

@pytest.fixture
def no_kaggle_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_KERNEL_RUN_TYPE"):
        monkeypatch.delenv(name, raising=False)
    empty_home = tmp_path / "home"
    empty_home.mkdir()
    monkeypatch.setenv("HOME", str(empty_home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(empty_home / ".kaggle"))


def test_kaggle_without_credentials_explains_what_to_do(tmp_path: Path, no_kaggle_credentials: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from kagglehub import clients

    def must_not_call_kaggle(*args, **kwargs):
        raise AssertionError("Kaggle must not be called without credentials")

    monkeypatch.setattr(clients, "build_kaggle_client", must_not_call_kaggle)
    message = expect_failure(tmp_path, "kaggle:someone/faces")
    assert "KAGGLE_API_TOKEN" in message and "KAGGLE_USERNAME" in message and "KAGGLE_KEY" in message
    assert "kaggle.json" in message and "data.source" in message


def test_malformed_kaggle_handle_is_refused(tmp_path: Path) -> None:
    message = expect_failure(tmp_path, "kaggle:just-a-name")
    assert "kaggle:<owner>/<dataset>" in message


# --- demo ------------------------------------------------------------------------------------

def test_demo_source_generates_a_hardfake_style_dataset(tmp_path: Path) -> None:
    pytest.importorskip("deepfake_detector.components.data.demo_data",
                        reason="the demo generator is not written yet")
    result = ingest(tmp_path, "demo")
    report = read_report(result.report_file)
    assert (report["kind"], result.layout) == ("demo", "hardfake_csv")
    assert result.class_counts == {"fake": 4, "real": 4}
    assert all((result.dataset_dir / row["path"]).is_file() for row in read_index(result.index_file))


def demo_images(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.jpg"))}


@pytest.mark.parametrize("source", ["demo:b", "DEMO:B", " demo:b "])
def test_demo_source_with_a_style_generates_that_style(tmp_path: Path, source: str) -> None:
    config = make_config(tmp_path, source)
    result = DataIngestion(config).run()
    generate_demo_dataset(replace(config.demo, style="b"), tmp_path / "expected")
    assert demo_images(result.dataset_dir) == demo_images(tmp_path / "expected")
    assert read_report(result.report_file)["source"] == "demo:b"
    assert result.class_counts == {"fake": 4, "real": 4}


def test_plain_demo_source_keeps_the_configured_style(tmp_path: Path) -> None:
    config = make_config(tmp_path, "demo")
    config = replace(config, demo=replace(config.demo, style="b"))
    result = DataIngestion(config).run()
    generate_demo_dataset(config.demo, tmp_path / "style_b")
    generate_demo_dataset(replace(config.demo, style="a"), tmp_path / "style_a")
    assert demo_images(result.dataset_dir) == demo_images(tmp_path / "style_b")
    assert demo_images(result.dataset_dir) != demo_images(tmp_path / "style_a")


def test_unknown_demo_style_names_the_value_and_the_known_styles(tmp_path: Path) -> None:
    message = expect_failure(tmp_path, "demo:z")
    assert "'z'" in message and "a, b" in message and "data.source" in message


@pytest.mark.parametrize("source, style", [("demo-video", "a"), ("demo-video:b", "b"), (" Demo-Video:B ", "b")])
def test_demo_video_source_writes_clips_in_class_folders(tmp_path: Path, source: str, style: str) -> None:
    config = make_config(tmp_path, source)
    config = replace(config, demo=replace(config.demo, videos_per_class=3, video_seconds=0.5))
    result = DataIngestion(config).run()
    rows = read_index(result.index_file)
    assert sorted(row["path"] for row in rows) == [f"{name}/{name}_{i}.mp4" for name in ("fake", "real")
                                                  for i in (1, 2, 3)]
    assert result.class_counts == {"fake": 3, "real": 3}
    report = read_report(result.report_file)
    assert report["kind"] == "demo_video" and report["source"] == ("demo-video" if style == "a" else "demo-video:b")
    clip = (result.dataset_dir / "fake/fake_1.mp4").read_bytes()
    assert clip[4:8] == b"ftyp"
    expected = render_demo_video(replace(config.demo, style=style), FAKE, 1, seconds=0.5)
    assert clip == expected


def test_unknown_demo_video_style_names_the_source_form(tmp_path: Path) -> None:
    message = expect_failure(tmp_path, "demo-video:z")
    assert "'z'" in message and "demo-video or demo-video:<style>" in message
