"""Signed links in emails: one-click unsubscribe, and tracked clicks that lead only into the
shop. A link whose signature does not check out is refused (400), never followed."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse

from ..conf import app_settings

UNSUBSCRIBE_SALT = "personalization.email.unsubscribe"
CLICK_SALT = "personalization.email.click"
OPEN_SALT = "personalization.email.open"
ALL = "all"


class BadLink(ValueError):
    """A link that was not signed by this shop, or that leads out of it."""


def site_url() -> str | None:
    """The shop's address for links in emails (EMAIL_SITE_URL), without a trailing slash."""
    value = app_settings.EMAIL_SITE_URL
    return str(value).rstrip("/") if value else None


def absolute(path: str) -> str:
    base = site_url()
    if base is None:
        raise BadLink("EMAIL_SITE_URL is not set")
    return base + "/" + path.lstrip("/")


_MARK = "TOKEN"
_routes: dict[tuple[Any, ...], tuple[str, str]] = {}


def _url(name: str, token: str) -> str:
    """``reverse(name, args=[token])``, made absolute, without resolving the route again for
    every link of every email (a campaign makes hundreds of thousands)."""
    key = (name, get_urlconf(), settings.ROOT_URLCONF, get_script_prefix())
    route = _routes.get(key)
    if route is None:
        before, _, after = reverse(name, args=[_MARK]).partition(_MARK)
        route = _routes[key] = (before, after)
    return absolute(route[0] + token + route[1])


def unsubscribe_token(recipient_id: int, flow: str = ALL) -> str:
    return signing.dumps({"r": recipient_id, "f": flow}, salt=UNSUBSCRIBE_SALT, compress=True)


def read_unsubscribe(token: str) -> tuple[int, str]:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        return int(data["r"]), str(data["f"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise BadLink("bad unsubscribe link") from None


def unsubscribe_url(recipient_id: int, flow: str = ALL) -> str:
    return _url("personalization:email-unsubscribe", unsubscribe_token(recipient_id, flow))


CONFIRM_SALT = "personalization.email.confirm"


def confirm_url(recipient_id: int) -> str:
    token = signing.dumps({"r": recipient_id}, salt=CONFIRM_SALT, compress=True)
    return _url("personalization:email-confirm", token)


def read_confirm(token: str) -> int:
    try:
        return int(signing.loads(token, salt=CONFIRM_SALT)["r"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise BadLink("bad confirmation link") from None


_NOT_IN_A_PATH = re.compile(r"[\x00-\x1f\\]")


def is_local_path(path: Any) -> bool:
    """A path of this shop: starts with one "/" and is not read by browsers as another host."""
    return (
        isinstance(path, str)
        and path.startswith("/")
        and not path.startswith(("//", "/\\"))
        and _NOT_IN_A_PATH.search(path) is None
    )


def click_url(send_id: Any, path: str) -> str:
    """A tracked link to ``path`` (a path of the shop) from the email ``send_id``."""
    return _url("personalization:email-click", click_token(send_id, path))


def click_token(send_id: Any, path: str) -> str:
    if not is_local_path(path):
        raise BadLink(f"not a path of the shop: {path!r}")
    return signing.dumps({"s": str(send_id), "p": path}, salt=CLICK_SALT)


def read_click(token: str) -> tuple[str, str]:
    try:
        data = signing.loads(token, salt=CLICK_SALT)
        send_id, path = str(data["s"]), data["p"]
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise BadLink("bad tracked link") from None
    if not is_local_path(path):
        raise BadLink("a tracked link out of the shop")
    return send_id, path


def open_url(send_id: Any) -> str:
    """The tracking pixel of the email ``send_id`` (``EMAIL_TRACK_OPENS``)."""
    token = signing.dumps(str(send_id), salt=OPEN_SALT, compress=True)
    return _url("personalization:email-open", token)


def read_open(token: str) -> str:
    try:
        return str(signing.loads(token, salt=OPEN_SALT))
    except (signing.BadSignature, TypeError, ValueError):
        raise BadLink("bad tracking pixel") from None
