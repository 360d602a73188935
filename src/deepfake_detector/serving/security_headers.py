"""Security headers on every answer (page, JSON, errors, static files): no MIME sniffing, no framing, no
referrer, and a Content-Security-Policy as strict as the page allows.

The page (templates/index.html, static/app.js) loads its script, style sheet and icon from this origin
and has no inline script, style or event handler (its one inline <script> is a JSON data block, which
never runs); scripts set styles through the CSSOM, which style-src does not govern. Images need more
than 'self': the API sends heatmaps as data: URLs, and the preview shows the chosen file as a blob: URL.
"""
from __future__ import annotations

from flask import Flask, Response

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",  # the chosen video's preview, from the browser's own copy of the file
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def register_security_headers(app: Flask) -> None:
    app.after_request(_add_security_headers)


def _add_security_headers(response: Response) -> Response:
    # setdefault: a route that chose its own value for one of these keeps it.
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
