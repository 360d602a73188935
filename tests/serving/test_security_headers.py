"""Every answer (the page, JSON, errors, static files, metrics) carries the security headers, and the page
needs nothing the Content-Security-Policy forbids."""
import re

import pytest

from deepfake_detector.serving.security_headers import CONTENT_SECURITY_POLICY
from deepfake_detector.serving.settings import repository_root


def directives(policy: str) -> dict[str, list[str]]:
    return {name: sources for name, *sources in (part.split() for part in policy.split(";") if part.strip())}


@pytest.mark.parametrize("method, path", [
    ("get", "/"),
    ("get", "/healthz"),
    ("get", "/api/v1/model"),
    ("get", "/static/style.css"),
    ("get", "/no/such/page"),
    ("post", "/api/v1/predict"),
    ("get", "/metrics"),
], ids=["html", "json", "model", "static", "404", "400", "metrics"])
def test_every_answer_carries_the_security_headers(client, method, path):
    response = getattr(client, method)(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_an_unexpected_error_carries_them_too(make_app):
    app = make_app()

    @app.get("/test-crash")
    def crash():
        raise RuntimeError("boom")

    response = app.test_client().get("/test-crash")
    assert response.status_code == 500
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_policy_forbids_framing_inline_scripts_and_plugins():
    policy = directives(CONTENT_SECURITY_POLICY)
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    for directive in ("script-src", "style-src"):
        assert policy[directive] == ["'self'"], f"{directive} allows more than this origin"


def test_the_page_has_no_inline_script_style_or_handler_the_policy_would_block():
    """The page as shipped works under the policy: its scripts and styles are files of this origin."""
    page = (repository_root() / "templates" / "index.html").read_text(encoding="utf-8")
    inline_scripts = [attributes for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
                      if body.strip() and "application/json" not in attributes]
    assert not inline_scripts
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=|javascript:", page, re.IGNORECASE)
