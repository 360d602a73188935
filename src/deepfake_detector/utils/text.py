"""Text fit to echo: a string someone else supplied (a JSON key, a form value, a file name, a header) is cut to
a short bound before it goes into an error message or a log line, so a 15 MB key costs 80 characters."""
from __future__ import annotations

ECHO_LIMIT = 80
ELLIPSIS = "…"


def shorten(text: str, limit: int = ECHO_LIMIT) -> str:
    """text when it has at most limit characters, else its first limit characters and "…"."""
    return text if len(text) <= limit else text[:limit] + ELLIPSIS
