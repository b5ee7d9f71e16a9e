"""Staff-written content made safe: HTML through the maintained Ammonia sanitizer (nh3),
and links checked the way browsers read them."""

from __future__ import annotations

import re

import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "em", "h2", "h3", "h4", "i", "img", "li",
    "mark", "ol", "p", "s", "small", "span", "strong", "sub", "sup", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "target"},
    "img": {"src", "alt", "width", "height", "loading"},
    "span": {"class"},
    "p": {"class"},
}


LINK_SCHEMES = {"http", "https", "mailto", "tel"}
# What the WHATWG URL parser strips: C0 controls and spaces at both ends, tabs and line breaks
# anywhere.
_EDGE_CHARACTERS = "".join(map(chr, range(0x21)))
_IGNORED_BY_BROWSERS = re.compile(r"[\t\n\r]")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")


def sanitize_html(html: str | None) -> str:
    """Staff HTML without scripts, styles, event handlers or javascript: links."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=LINK_SCHEMES,
        link_rel="noopener noreferrer",
    )


def safe_link(url: str | None) -> str:
    r"""The link as a browser reads it when it is a path on this site (``/…``, ``#…``, ``?…``)
    or an http(s), mailto or tel URL; otherwise "".

    Browsers drop blanks and control characters at both ends and tabs and line breaks
    anywhere, and take a backslash for a slash: ``//evil``, ``/\evil``, ``\\evil`` and
    ``/\t/evil`` all lead to another site, and are refused like ``JavaScript:``,
    ``java\tscript:`` or any other scheme.
    """
    url = _IGNORED_BY_BROWSERS.sub("", (url or "").strip(_EDGE_CHARACTERS))
    if not url or _CONTROL_CHARACTER.search(url):
        return ""
    if url[0] in "/\\":
        return url if url[0] == "/" and url[1:2] not in ("/", "\\") else ""
    if url[0] in "#?":
        return url
    scheme = _SCHEME.match(url)
    return url if scheme and scheme.group(1).lower() in LINK_SCHEMES else ""
