"""Images out of an HTTP request: multipart `file` fields, JSON {"image": base64} / {"images": [...]}, or one
image as the raw body (Content-Type image/* or application/octet-stream: no form parsing, no base64).

Everything stays in memory; every malformed request becomes an ApiError naming what is wrong. Items are
counted before any is decoded, and whatever the client wrote that a message repeats is cut short first.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from flask import Request

from deepfake_detector.serving.errors import ApiError
from deepfake_detector.serving.multipart_form import FormPart, parse_form
from deepfake_detector.utils.text import shorten

FILE_FIELD = "file"
# Plain fields a form may carry beside its files (explain is the one read); more parts than that are refused.
MAX_FORM_FIELDS = 16
_DATA_URL = re.compile(r"^data:[\w.+-]*/?[\w.+-]*(;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_KEYS_SHOWN = 10


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


@dataclass(frozen=True)
class ImageRequest:
    uploads: list[Upload]
    explain: bool


def read_image_request(request: Request, max_images: int) -> ImageRequest:
    """The uploads and the explain flag of a predict request."""
    if request.mimetype == "multipart/form-data":
        parts = parse_form(request.get_data(cache=False), request.content_type or "", max_images + MAX_FORM_FIELDS)
        uploads = _from_multipart(parts, max_images)
        explain = _flag("explain", request.args.get("explain", _form_field(parts, "explain")))
    elif _is_raw_image(request.mimetype):
        uploads = [_from_raw_body(request)]
        explain = _flag("explain", request.args.get("explain"))
    elif request.is_json:
        body = _json_body(request)
        uploads = _from_json(body, max_images)
        explain = _flag("explain", request.args.get("explain", body.get("explain")))
    elif not request.get_data(cache=False):
        raise ApiError(400, "missing_image", _HOW_TO_SEND)
    else:
        raise ApiError(415, "unsupported_media_type",
                       f"content type {shorten(request.mimetype or 'none')!r} is not accepted: {_HOW_TO_SEND}")
    return ImageRequest(uploads, explain)


_HOW_TO_SEND = ("send the image or video as multipart/form-data field 'file', as JSON "
                '{"image": "<base64>"} (or {"images": [...]}) with Content-Type application/json, '
                "or as the raw body with Content-Type image/*, video/* or application/octet-stream")
RAW_BODY_TYPES = ("application/octet-stream",)


def _is_raw_image(mimetype: str) -> bool:
    return mimetype.startswith(("image/", "video/")) or mimetype in RAW_BODY_TYPES


def _from_raw_body(request: Request) -> Upload:
    """The body itself is the image; ?filename= names it in answers and logs (the content decides its format)."""
    name = _clean_name(request.args.get("filename")) or "image"
    data = request.get_data(cache=False)
    if not data:
        raise ApiError(400, "missing_image", f"{name}: the request body is empty")
    return Upload(name, data)


def _check_count(count: int, max_images: int) -> None:
    """Refuse too many items while they are still undecoded: 2 M tiny base64 strings must cost no decoding."""
    if count > max_images:
        raise ApiError(413, "too_many_images", f"{count} images in one request; at most {max_images} are accepted")


def _some_keys(keys: Iterable[str]) -> str:
    """The first few keys the client sent, each cut short, for a message saying what was found instead."""
    return ", ".join(repr(shorten(key)) for key in islice(keys, _KEYS_SHOWN))


def _from_multipart(parts: list[FormPart], max_images: int) -> list[Upload]:
    files = [part for part in parts if part.is_file and part.name == FILE_FIELD]
    if not files:
        other = sorted({part.name for part in parts if part.is_file})
        found = f" (found file field(s) {_some_keys(other)})" if other else ""
        raise ApiError(400, "missing_image", f"no multipart field named '{FILE_FIELD}'{found}: {_HOW_TO_SEND}")
    _check_count(len(files), max_images)
    uploads = []
    for index, part in enumerate(files, start=1):
        name = _clean_name(part.filename) or f"{FILE_FIELD} {index}"
        if not part.data and not part.filename:
            raise ApiError(400, "missing_image", f"multipart field '{FILE_FIELD}' is empty: no file was chosen")
        uploads.append(Upload(name, part.data))
    return uploads


def _form_field(parts: list[FormPart], name: str) -> str | None:
    """The first plain (not file) field of that name, as text."""
    return next((part.data.decode("utf-8", errors="replace") for part in parts
                 if not part.is_file and part.name == name), None)


def _json_body(request: Request) -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw:
        raise ApiError(400, "missing_image", f"empty JSON body: {_HOW_TO_SEND}")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as error:  # ValueError covers bad UTF-8 and bad JSON
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", f"expected a JSON object, got {type(body).__name__}: {_HOW_TO_SEND}")
    return body


def _from_json(body: dict[str, Any], max_images: int) -> list[Upload]:
    if "image" in body:
        name = _clean_name(body.get("filename")) or "image"
        return [Upload(name, _decode_base64(body["image"], name))]
    if "images" in body:
        items = body["images"]
        if not isinstance(items, list) or not items:
            raise ApiError(400, "missing_image", "'images' must be a non-empty list of base64 strings")
        _check_count(len(items), max_images)
        return [Upload(f"images[{i}]", _decode_base64(item, f"images[{i}]")) for i, item in enumerate(items)]
    keys = _some_keys(body) or "none"
    raise ApiError(400, "missing_image", f"no 'image' or 'images' key in the JSON body (keys: {keys})")


def _decode_base64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise ApiError(400, "invalid_base64", f"{name}: expected a base64 string, got {type(value).__name__}")
    text = _WHITESPACE.sub("", _DATA_URL.sub("", value.strip(), count=1))
    if not text:
        raise ApiError(400, "missing_image", f"{name}: the base64 string is empty")
    text += "=" * (-len(text) % 4)  # tolerate stripped padding
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ApiError(400, "invalid_base64", f"{name}: not valid base64: {error}") from None


def _flag(name: str, value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if not isinstance(value, (str, int, float)):
        raise ApiError(400, "invalid_parameter", f"{name}: expected true or false, got a {type(value).__name__}")
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ApiError(400, "invalid_parameter", f"{name}={shorten(str(value))!r}: expected true or false")


def _clean_name(name: Any) -> str:
    """A display name for an upload: the base name, printable, cut short (it is echoed in answers and logs)."""
    if not isinstance(name, str):
        return ""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return shorten("".join(ch for ch in base if ch.isprintable()))
