"""Text safe to log and to show: a data source without the credentials a URL may carry."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """The URL without user name, password, query string or fragment (they may hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    try:
        port = parts.port
    except ValueError:  # not a number: dropped, as showing the URL must never fail
        port = None
    if port is not None:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def displayable_source(source: str) -> str:
    """params.yaml data.source as it may be shown: a URL redacted, anything else (demo, a path,
    kaggle:<owner>/<dataset>) as written."""
    text = source.strip()
    return redact_url(text) if "://" in text else text
