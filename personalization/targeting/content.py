"""Sanitizing staff-written HTML with the maintained Ammonia sanitizer (nh3)."""

from __future__ import annotations

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


def sanitize_html(html: str | None) -> str:
    """Staff HTML without scripts, styles, event handlers or javascript: links."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer",
    )


def safe_link(url: str | None) -> str:
    """The URL if it is relative or http(s)/mailto/tel; otherwise "" (no javascript: links)."""
    url = (url or "").strip()
    if not url:
        return ""
    if url.startswith(("/", "#", "?")) and not url.startswith("//"):
        return url
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    return url if scheme in {"http", "https", "mailto", "tel"} else ""
