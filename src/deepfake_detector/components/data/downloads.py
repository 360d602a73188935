"""Downloads of data sources over http(s), held to params.yaml's limits.

A download is capped in bytes and in total time, uses https unless plain http is allowed, and
follows only redirects that keep to http(s) and never downgrade https to http; whatever goes
wrong, nothing is left behind and the error names the URL (without credentials) and the limit.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3
from tqdm import tqdm

from deepfake_detector.contracts.errors import IngestionError
from deepfake_detector.utils.files import atomic_path
from deepfake_detector.utils.redaction import redact_url

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_REDIRECTS = 10
# identity: so that Content-Length counts the bytes we receive, and a short body shows.
_HEADERS = {"Accept-Encoding": "identity"}


@dataclass(frozen=True)
class DownloadLimits:
    max_bytes: int  # params.yaml data.max_download_mb
    max_seconds: float  # data.max_download_s: the whole download, redirects included
    read_timeout_s: float  # data.download_timeout_s: to connect, and between two reads
    allow_http: bool  # data.allow_http


class _Deadline:
    """The moment data.max_download_s runs out, counted from the first request."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def is_past(self) -> bool:
        return self.remaining() <= 0


def download(url: str, target: Path, limits: DownloadLimits, display: str | None = None) -> str:
    """Stream url to target within limits and return the file's sha256.

    target appears only once the whole body has arrived; a refused URL or redirect, a body over
    the byte cap, a missed deadline, a cut connection or a short body raises IngestionError and
    leaves nothing behind. display names the download in messages (default: the redacted URL).
    """
    display = display or redact_url(url)
    logger.info("Downloading %s", display)
    deadline = _Deadline(limits.max_seconds)
    try:
        with atomic_path(target) as partial:
            with _open(url, limits, deadline, display) as response:
                digest = _receive(response, partial, limits, deadline, display, label=target.name)
    except (requests.Timeout, urllib3.exceptions.ReadTimeoutError):
        if deadline.is_past():
            raise _too_slow(display, limits) from None
        raise IngestionError(f"download of {display} timed out after {limits.read_timeout_s:g} s "
                             "(params.yaml: data.download_timeout_s)") from None
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else "error"
        raise IngestionError(f"download of {display} failed: HTTP {status}; check the URL") from None
    except OSError as error:
        raise IngestionError(f"download of {display} could not be saved in {target.parent}: "
                             f"{error}") from None
    return digest


def _check_url(url: str, limits: DownloadLimits, display: str) -> None:
    """Refuse a URL that is not https (or http, when data.allow_http is true)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and limits.allow_http):
        return
    if scheme == "http":
        raise IngestionError(f"download of {display} refused: plain http is not allowed (params.yaml: "
                             "data.allow_http is false); use an https URL, or set data.allow_http: true "
                             "for a server and network you trust")
    raise IngestionError(f"download of {display} refused: {redact_url(url)!r} is not an http(s) URL")


def check_redirects(urls: Sequence[str], limits: DownloadLimits, display: str) -> None:
    """Refuse a chain of redirects (the first URL, then each one it led to) that leaves http(s) or
    downgrades https to plain http: a downgrade exposes the request, whatever data.allow_http says."""
    _check_url(urls[0], limits, display)
    for origin, target in itertools.pairwise(urls):
        target_scheme = urlsplit(target).scheme.lower()
        if target_scheme not in ("http", "https"):
            raise IngestionError(f"download of {display} refused: the server redirected to "
                                 f"{redact_url(target)!r}, which is not an http(s) URL")
        if urlsplit(origin).scheme.lower() == "https" and target_scheme == "http":
            raise IngestionError(f"download of {display} refused: the server redirected from https to plain "
                                 f"http ({redact_url(target)}); only redirects that keep https are followed")
        _check_url(target, limits, display)


@contextlib.contextmanager
def _open(url: str, limits: DownloadLimits, deadline: _Deadline, display: str) -> Iterator[requests.Response]:
    """The response to url once its redirects are followed, each checked before it is requested."""
    chain = [url]
    check_redirects(chain, limits, display)
    for _ in range(MAX_REDIRECTS + 1):
        if deadline.is_past():
            raise _too_slow(display, limits)
        # A read may wait data.download_timeout_s, but never past the deadline.
        response = _get(chain[-1], min(limits.read_timeout_s, deadline.remaining()), display)
        if not response.is_redirect:
            break
        response.close()
        chain.append(urljoin(chain[-1], response.headers["Location"]))
        check_redirects(chain[-2:], limits, display)
    else:
        raise IngestionError(f"download of {display} refused: more than {MAX_REDIRECTS} redirects")
    with response:
        response.raise_for_status()
        yield response


def _get(url: str, timeout_s: float, display: str) -> requests.Response:
    try:
        return requests.get(url, stream=True, timeout=timeout_s, headers=_HEADERS, allow_redirects=False)
    except requests.Timeout:
        raise
    except requests.RequestException as error:
        raise IngestionError(f"download of {display} failed ({_without_secrets(str(error), url)}); nothing "
                             "was kept: check the URL and the connection, then run again") from None


def _receive(response: requests.Response, path: Path, limits: DownloadLimits, deadline: _Deadline, display: str,
             label: str) -> str:
    expected = _content_length(response)
    if expected is not None and expected > limits.max_bytes:
        raise _too_large(display, limits, f" (the server announces {expected} bytes)")
    digest = hashlib.sha256()
    received = 0
    with open(path, "wb") as out, tqdm(total=expected, desc=f"Downloading {label}", unit="B", unit_scale=True,
                                       unit_divisor=1024, leave=False) as bar:
        is_cut = False
        try:
            # read1 returns whatever one read brings, so the caps bite even when bytes trickle in.
            while chunk := response.raw.read1(CHUNK, decode_content=True):
                received += len(chunk)
                if received > limits.max_bytes:
                    raise _too_large(display, limits, "")
                if deadline.is_past():
                    raise _too_slow(display, limits)
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        except urllib3.exceptions.ReadTimeoutError:
            raise
        except urllib3.exceptions.HTTPError:
            is_cut = True
    if is_cut or (expected is not None and received != expected):
        total = expected if expected is not None else "an unknown number of"
        raise IngestionError(f"download of {display} was cut off after {received} of {total} bytes; "
                             "nothing was kept: run again")
    return digest.hexdigest()


def _too_large(display: str, limits: DownloadLimits, detail: str) -> IngestionError:
    return IngestionError(f"download of {display} refused: larger than {limits.max_bytes / 2**20:g} MiB{detail} "
                          "(params.yaml: data.max_download_mb); nothing was kept")


def _too_slow(display: str, limits: DownloadLimits) -> IngestionError:
    return IngestionError(f"download of {display} refused: not finished within {limits.max_seconds:g} s "
                          "(params.yaml: data.max_download_s); nothing was kept")


def _content_length(response: requests.Response) -> int | None:
    if response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
        return None
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def download_name(url: str) -> str:
    """A safe file name for what url holds: its last path segment, or `download`."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return re.sub(r"[^\w.-]", "_", name).lstrip(".") or "download"


def _without_secrets(message: str, url: str) -> str:
    """Library error messages quote the URL; keep its password and query out of logs."""
    parts = urlsplit(url)
    for secret in (parts.query, parts.password, parts.username):
        if secret:
            message = message.replace(secret, "***")
    return message
