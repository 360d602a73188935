"""Loopback http(s) servers for the download tests: each route is a small function of the request
handler, so one test can announce a false length, trickle bytes or redirect anywhere. Nothing leaves
127.0.0.1; the https server uses a self-signed certificate that only the test trusts."""
from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

Route = Callable[[BaseHTTPRequestHandler], None]


class RouteHandler(BaseHTTPRequestHandler):
    """Answers GET and POST with server.routes[path]; counts every request in server.requests."""

    def do_GET(self) -> None:
        self.server.requests.append((self.command, self.path))
        route = self.server.routes.get(urlsplit(self.path).path)
        if route is None:
            self.send_error(404)
            return
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (a refused download): expected, not a server fault

    do_POST = do_GET

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class' name
        pass


@contextlib.contextmanager
def loopback_server(certificate: tuple[Path, Path] | None = None) -> Iterator[ThreadingHTTPServer]:
    """A threaded server on 127.0.0.1 (https with certificate = (cert, key)); its url() gives a route's URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), RouteHandler)
    server.daemon_threads = True
    server.routes, server.requests = {}, []
    scheme = "https" if certificate else "http"
    if certificate:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.url = lambda route: f"{scheme}://127.0.0.1:{server.server_address[1]}{route}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files in folder."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


# --- routes ----------------------------------------------------------------------------------

def body(data: bytes, *, length: int | None = None, chunked: bool = False) -> Route:
    """Serve data; length: the Content-Length to announce (default: the true one; -1: none, the body then
    ends when the connection closes); chunked: send it chunked (a Content-Length, if any, is then a lie)."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/zip")
        announced = len(data) if length is None else length
        if announced >= 0:
            handler.send_header("Content-Length", str(announced))
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        if chunked:
            for start in range(0, len(data), 1 << 16):
                piece = data[start:start + (1 << 16)]
                handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            handler.wfile.write(b"0\r\n\r\n")
        else:
            handler.wfile.write(data)
        handler.close_connection = True
    return route


def drip(data: bytes, piece: int, pause_s: float) -> Route:
    """Serve data a few bytes at a time, so that no read ever waits long but the whole takes ages."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        for start in range(0, len(data), piece):
            handler.wfile.write(data[start:start + piece])
            handler.wfile.flush()
            time.sleep(pause_s)
    return route


def redirect(location: str, status: int = 302) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return route


# The Kaggle API's download call for a dataset, as kagglesdk sends it (POST, JSON body) outside PROD.
KAGGLE_DOWNLOAD_ROUTE = "/api/v1/datasets.DatasetApiService/DownloadDataset"


def kaggle_api(bundle_route: str, requests_seen: list[bytes]) -> Route:
    """Kaggle's answer to a dataset download: a redirect to the bundle (a signed storage URL in production)."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        requests_seen.append(handler.rfile.read(int(handler.headers.get("Content-Length", 0))))
        redirect(bundle_route)(handler)
    return route


def clear_proxies(monkeypatch) -> None:  # noqa: ANN001 - pytest's MonkeyPatch
    """Loopback requests must not be sent to a proxy configured in the environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
