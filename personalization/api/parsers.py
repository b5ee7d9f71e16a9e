"""Request bodies of the API, read with limits: size, nesting and characters. Bad input is a
400 that says what is wrong, never a 500 (a JSON array nested a thousand deep would overflow
Python's stack; a NUL byte would reach PostgreSQL, which refuses it)."""

from __future__ import annotations

import re
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import QueryDict
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.request import Request
from rest_framework.utils import json

# The page scripts send well under a kilobyte; a signup is an address and a consent text.
MAX_BODY_BYTES = 16 * 1024
MAX_DEPTH = 16
# Never part of an address, a consent text or an id: NUL and the other C0 control characters
# but tab and line breaks, DEL, and halves of surrogate pairs (no database stores them).
FORBIDDEN_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def announced_length(request: Request) -> int:
    """The body's length as the request announces it (0 when it says nothing readable)."""
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def check_size(request: Request) -> None:
    """ParseError when the request announces a body larger than MAX_BODY_BYTES, before it is
    read."""
    if announced_length(request) > MAX_BODY_BYTES:
        raise ParseError(_too_large())


def check_media_type(request: Request) -> None:
    """UnsupportedMediaType (415) when the request has a body that no parser of the view
    reads; the body itself is not read."""
    if announced_length(request) and not request.negotiator.select_parser(request, request.parsers):  # type: ignore[union-attr, arg-type]
        raise UnsupportedMediaType(request.content_type)


def check_depth(text: str) -> None:
    """ParseError when arrays and objects nest deeper than MAX_DEPTH (strings not counted)."""
    depth = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_DEPTH:
            raise ParseError(
                _("JSON nested deeper than %(max)d arrays or objects is not accepted.")
                % {"max": MAX_DEPTH}
            )


def check_texts(data: Any) -> None:
    """ParseError when a text anywhere in ``data`` (keys too) holds a forbidden character.
    Walks lists, dicts and QueryDicts without recursion."""
    pending: list[Any] = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if FORBIDDEN_CHARACTER.search(value):
                raise ParseError(
                    _(
                        "The body holds a control character (such as a NUL byte) or half of a "
                        "surrogate pair; remove it."
                    )
                )
        elif isinstance(value, QueryDict):
            pending.extend(value.keys())
            pending.extend(v for key in value for v in value.getlist(key))
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def read_body(stream: IO[bytes] | None, parser_context: dict[str, Any] | None) -> tuple[bytes, str]:
    """The body, at most MAX_BODY_BYTES, and the text encoding it is declared in."""
    encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
    try:
        "".encode(encoding)  # only text encodings: a codec such as bz2 would inflate the body
    except (LookupError, UnicodeError) as exc:
        raise ParseError(_("Unsupported charset %(charset)r.") % {"charset": encoding}) from exc
    raw = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
    if len(raw) > MAX_BODY_BYTES:
        raise ParseError(_too_large())
    return raw, encoding


def _too_large() -> str:
    return _("The body is larger than %(max)d bytes.") % {"max": MAX_BODY_BYTES}


class LimitedJSONParser(JSONParser):
    """JSON, checked for size and depth before it is parsed, and for characters after."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw, encoding = read_body(stream, parser_context)
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        check_depth(text)
        try:
            data = json.loads(text, parse_constant=json.strict_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        check_texts(data)
        return data


class BeaconJSONParser(LimitedJSONParser):
    """JSON sent as ``text/plain``: what ``navigator.sendBeacon`` sends for a string body.
    A view that accepts it must refuse cross-site posts (``permissions.SameOriginPost``):
    a text/plain post is one any website can make."""

    media_type = "text/plain"


class LimitedFormParser(FormParser):
    """A URL-encoded form (the popup's form without JavaScript), with the same limits."""

    def parse(  # type: ignore[override]  # a mutable QueryDict, as DRF's own FormParser returns
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> QueryDict:
        raw, encoding = read_body(stream, parser_context)
        try:
            data = QueryDict(raw, encoding=encoding)
        except TooManyFieldsSent as exc:
            raise ParseError(_("The form has too many fields.")) from exc
        check_texts(data)
        return data
