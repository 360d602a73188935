"""Downloads held to params.yaml's limits: bytes, total time, https and its redirects, for URLs and
Kaggle bundles alike; a refused download leaves the previous dataset as it was.

Every server listens on 127.0.0.1 (tests/unit/download_fixtures.py); nothing leaves the machine.
"""
from __future__ import annotations

import json
import socket
import stat
import time
import zipfile
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from deepfake_detector.components.data.ingestion import DataIngestion
from deepfake_detector.contracts.errors import IngestionError
from tests.unit.download_fixtures import (
    KAGGLE_DOWNLOAD_ROUTE,
    body,
    clear_proxies,
    drip,
    kaggle_api,
    loopback_server,
    redirect,
    self_signed_certificate,
)
from tests.unit.ingest_fixtures import files_under, ingest, make_class_folders, make_config, read_report, zip_folder

MiB = 2**20


@pytest.fixture
def http_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadingHTTPServer]:
    clear_proxies(monkeypatch)
    with loopback_server() as server:
        yield server


@pytest.fixture
def https_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadingHTTPServer]:
    pytest.importorskip("cryptography", reason="makes the test's self-signed certificate")
    clear_proxies(monkeypatch)
    (tmp_path / "tls").mkdir()
    certificate = self_signed_certificate(tmp_path / "tls")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))  # trusted by this test's downloads only
    with loopback_server(certificate) as server:
        yield server


@pytest.fixture
def dataset_folder(tmp_path: Path) -> Path:
    return make_class_folders(tmp_path / "inputs" / "faces")


@pytest.fixture
def dataset_zip(tmp_path: Path, dataset_folder: Path) -> bytes:
    return zip_folder(dataset_folder, tmp_path / "inputs" / "faces.zip").read_bytes()


def outputs(root: Path) -> dict[str, bytes | None]:
    """Everything under root, hidden entries too: each file with its bytes, each folder with None."""
    return {path.relative_to(root).as_posix(): path.read_bytes() if path.is_file() else None
            for path in sorted(root.rglob("*"))}


def refusal(tmp_path: Path, source: str, **fields) -> str:
    """Ingest a folder, then source with fields: expect IngestionError, and the folder's outputs exactly
    as they were, with nothing partial beside them."""
    ingest(tmp_path, make_class_folders(tmp_path / "inputs" / "previous", {"fake": 2, "real": 2}))
    before = outputs(tmp_path / "artifacts")
    with pytest.raises(IngestionError) as caught:
        DataIngestion(make_config(tmp_path, source, **fields)).run()
    assert outputs(tmp_path / "artifacts") == before
    return str(caught.value)


# --- bytes and time --------------------------------------------------------------------------

def test_download_announced_over_the_cap_is_refused(tmp_path: Path, http_server: ThreadingHTTPServer) -> None:
    http_server.routes["/big.zip"] = body(b"", length=50 * MiB)
    message = refusal(tmp_path, http_server.url("/big.zip"), allow_http=True, max_download_bytes=MiB)
    assert "/big.zip refused: larger than 1 MiB" in message and "data.max_download_mb" in message


def test_download_with_a_lying_content_length_is_cut_at_the_cap(tmp_path: Path,
                                                                 http_server: ThreadingHTTPServer) -> None:
    # Announces 1000 bytes, then sends 3 MiB chunked (which overrides Content-Length).
    http_server.routes["/lying.zip"] = body(bytes(3 * MiB), length=1000, chunked=True)
    message = refusal(tmp_path, http_server.url("/lying.zip"), allow_http=True, max_download_bytes=MiB)
    assert "/lying.zip refused: larger than 1 MiB" in message and "data.max_download_mb" in message


def test_download_without_content_length_is_cut_at_the_cap(tmp_path: Path,
                                                            http_server: ThreadingHTTPServer) -> None:
    http_server.routes["/unannounced.zip"] = body(bytes(3 * MiB), length=-1)
    message = refusal(tmp_path, http_server.url("/unannounced.zip"), allow_http=True, max_download_bytes=MiB)
    assert "/unannounced.zip refused: larger than 1 MiB" in message and "data.max_download_mb" in message


def test_slow_drip_is_refused_at_the_total_deadline(tmp_path: Path, http_server: ThreadingHTTPServer) -> None:
    # 1 kB every 20 ms: no read waits long, but the whole would take 4 s.
    http_server.routes["/drip.zip"] = drip(bytes(200_000), piece=1000, pause_s=0.02)
    started = time.monotonic()
    message = refusal(tmp_path, http_server.url("/drip.zip"), allow_http=True, max_download_s=0.5, timeout_s=5.0)
    assert time.monotonic() - started < 3.0
    assert "/drip.zip refused: not finished within 0.5 s" in message and "data.max_download_s" in message


# --- https and redirects ---------------------------------------------------------------------

def test_plain_http_is_refused_unless_allowed(tmp_path: Path, http_server: ThreadingHTTPServer,
                                              dataset_zip: bytes) -> None:
    http_server.routes["/faces.zip"] = body(dataset_zip)
    message = refusal(tmp_path, http_server.url("/faces.zip"))
    assert "plain http is not allowed" in message and "data.allow_http" in message
    assert http_server.requests == []


def test_redirect_from_https_to_http_is_refused(tmp_path: Path, https_server: ThreadingHTTPServer,
                                                http_server: ThreadingHTTPServer, dataset_zip: bytes) -> None:
    http_server.routes["/faces.zip"] = body(dataset_zip)
    https_server.routes["/faces.zip"] = redirect(http_server.url("/faces.zip") + "?signature=s3cret")
    # Refused even with plain http allowed: the downgrade would expose a request meant for https.
    message = refusal(tmp_path, https_server.url("/faces.zip"), allow_http=True)
    assert "redirected from https to plain http" in message and http_server.url("/faces.zip") in message
    assert "s3cret" not in message
    assert http_server.requests == []


def test_redirect_to_a_file_url_is_refused(tmp_path: Path, http_server: ThreadingHTTPServer) -> None:
    secret = tmp_path / "inputs" / "secret.zip"
    http_server.routes["/faces.zip"] = redirect(secret.as_uri())
    message = refusal(tmp_path, http_server.url("/faces.zip"), allow_http=True)
    assert f"redirected to '{secret.as_uri()}', which is not an http(s) URL" in message


def test_endless_redirects_are_refused(tmp_path: Path, http_server: ThreadingHTTPServer) -> None:
    http_server.routes["/loop.zip"] = redirect("/loop.zip")
    message = refusal(tmp_path, http_server.url("/loop.zip"), allow_http=True)
    assert "more than 10 redirects" in message


def test_https_download_follows_redirects_that_keep_https(tmp_path: Path, https_server: ThreadingHTTPServer,
                                                          dataset_zip: bytes) -> None:
    https_server.routes["/moved.zip"] = redirect("/faces.zip", status=301)
    https_server.routes["/faces.zip"] = body(dataset_zip)
    result = ingest(tmp_path, https_server.url("/moved.zip"))
    assert (read_report(result.report_file)["kind"], result.n_files) == ("url", 5)
    assert [path for _, path in https_server.requests] == ["/moved.zip", "/faces.zip"]


# --- Kaggle ----------------------------------------------------------------------------------

@pytest.fixture
def kaggle_server(tmp_path: Path, http_server: ThreadingHTTPServer,
                  monkeypatch: pytest.MonkeyPatch) -> ThreadingHTTPServer:
    """The Kaggle API on loopback: kagglesdk's local environment, pointed at http_server, with credentials."""
    from kagglesdk import kaggle_env

    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.LOCAL, http_server.url(""))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no token file of the machine's user
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-real-key")
    http_server.api_calls = []
    http_server.routes[KAGGLE_DOWNLOAD_ROUTE] = kaggle_api("/bundles/faces.zip", http_server.api_calls)
    return http_server


def test_kaggle_bundle_is_downloaded_and_extracted(tmp_path: Path, kaggle_server: ThreadingHTTPServer,
                                                   dataset_zip: bytes, dataset_folder: Path) -> None:
    kaggle_server.routes["/bundles/faces.zip"] = body(dataset_zip)
    result = ingest(tmp_path, "kaggle:someone/faces/versions/3", allow_http=True)
    assert json.loads(kaggle_server.api_calls[0]) == {"ownerSlug": "someone", "datasetSlug": "faces",
                                                      "datasetVersionNumber": 3}
    assert read_report(result.report_file)["kind"] == "kaggle"
    assert files_under(result.dataset_dir) == files_under(dataset_folder)


def test_kaggle_bundle_over_the_download_cap_is_refused(tmp_path: Path,
                                                        kaggle_server: ThreadingHTTPServer) -> None:
    kaggle_server.routes["/bundles/faces.zip"] = body(bytes(3 * MiB), length=-1)
    message = refusal(tmp_path, "kaggle:someone/faces", allow_http=True, max_download_bytes=MiB)
    assert "download of kaggle:someone/faces refused: larger than 1 MiB" in message
    assert "data.max_download_mb" in message


def add_a_link(archive: Path) -> None:
    with zipfile.ZipFile(archive, "a") as handle:
        link = zipfile.ZipInfo("real/link.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        handle.writestr(link, "/etc/passwd")


@pytest.mark.parametrize(("problem", "fields", "expected"), [
    ("too many members", {"max_members": 3}, "more than 3 members (params.yaml: data.max_archive_members)"),
    ("too large unpacked", {"max_bytes": 1000}, "params.yaml: data.max_extracted_mb"),
    ("a link", {}, "'real/link.jpg' is a symbolic link"),
])
def test_kaggle_bundle_is_held_to_the_archive_checks(tmp_path: Path, kaggle_server: ThreadingHTTPServer,
                                                     dataset_folder: Path, problem: str, fields: dict,
                                                     expected: str) -> None:
    bundle = zip_folder(dataset_folder, tmp_path / "inputs" / "bundle.zip")
    if problem == "a link":
        add_a_link(bundle)
    kaggle_server.routes["/bundles/faces.zip"] = body(bundle.read_bytes())
    message = refusal(tmp_path, "kaggle:someone/faces", allow_http=True, **fields)
    assert expected in message


def test_kaggle_over_plain_http_is_refused_unless_allowed(tmp_path: Path, kaggle_server: ThreadingHTTPServer,
                                                          dataset_zip: bytes) -> None:
    kaggle_server.routes["/bundles/faces.zip"] = body(dataset_zip)
    message = refusal(tmp_path, "kaggle:someone/faces")
    assert "download of kaggle:someone/faces refused: plain http is not allowed" in message


def test_kaggle_unreachable_is_a_clear_error(tmp_path: Path, kaggle_server: ThreadingHTTPServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from kagglesdk import kaggle_env

    with socket.socket() as probe:  # a port that nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.LOCAL, f"http://127.0.0.1:{port}")
    message = refusal(tmp_path, "kaggle:someone/faces", allow_http=True)
    assert "kaggle:someone/faces: download failed" in message and "zip" in message
