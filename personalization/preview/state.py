"""What a staff member previews, kept in a signed cookie bound to that staff member.

The cookie says which overrides are on; it is signed with the project's SECRET_KEY, expires
after ``PREVIEW_AGE_HOURS`` and names the user it was made for, with a keyed hash of their
password (changing it ends their previews). Each request checks again that its user may still
preview: a cookie that fails any check is ignored and deleted.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from django.core import signing
from django.http import HttpRequest, HttpResponseBase
from django.utils.crypto import constant_time_compare, salted_hmac

from ..conf import app_settings

COOKIE_NAME = "pzn_preview"
SALT = "personalization.preview"
VISITS = ("first", "returning")
GROUPS = ("personalized", "control")
#: Set on a request whose preview cookie was refused: the response deletes it.
REFUSED = "_personalization_preview_refused"
_SLUG_RE = re.compile(r"[-a-zA-Z0-9_]{1,100}")
_COUNTRY_RE = re.compile(r"[A-Z]{2}")
_MAX_COOKIE_CHARS = 2048


@dataclass(frozen=True, slots=True)
class Preview:
    """The overrides of one staff member's preview; "" or None: not overridden."""

    segment: str = ""  # the visitor is in this segment, and no other
    country: str = ""  # ISO 3166-1 alpha-2
    visit: str = ""  # "first" or "returning"
    group: str = ""  # "personalized" or "control"
    banner: int | None = None  # primary key of a banner shown in its placement
    strategy: str = ""  # recommendation strategy of every placement (personalized group)

    @classmethod
    def from_values(cls, values: Any) -> Preview | None:
        """A preview from a mapping of its fields (the cookie's, or a form's cleaned data);
        None when any of them is malformed."""
        if not isinstance(values, dict):
            return None
        segment = values.get("segment") or ""
        country = values.get("country") or ""
        visit = values.get("visit") or ""
        group = values.get("group") or ""
        banner = values.get("banner")
        strategy = values.get("strategy") or ""
        texts = (segment, country, visit, group, strategy)
        if not all(isinstance(text, str) for text in texts):
            return None
        if (
            (segment and not _SLUG_RE.fullmatch(segment))
            or (country and not _COUNTRY_RE.fullmatch(country))
            or (visit and visit not in VISITS)
            or (group and group not in GROUPS)
            or (strategy and not _SLUG_RE.fullmatch(strategy))
        ):
            return None
        if banner in ("", None):
            banner = None
        elif isinstance(banner, bool) or not isinstance(banner, int) or banner <= 0:
            return None
        return cls(segment, country, visit, group, banner, strategy)

    def as_query(self) -> dict[str, str]:
        """The overrides as query parameters of the preview page (the ones that are on)."""
        return {key: str(value) for key, value in asdict(self).items() if value not in ("", None)}


def may_preview(user: Any) -> bool:
    """Whether ``user`` may preview the site: an active staff member with
    ``PREVIEW_PERMISSION`` (any staff member when it is None; nobody when it is malformed)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if not (getattr(user, "is_active", False) and getattr(user, "is_staff", False)):
        return False
    permission = app_settings.PREVIEW_PERMISSION
    if permission is None:
        return True
    if not isinstance(permission, str) or permission.count(".") != 1:
        return False  # personalization.W009
    return bool(user.has_perm(permission))


def _user_key(user: Any) -> str:
    """A keyed hash of the user and their password hash: a preview made for them is theirs,
    and ends when the password changes."""
    get_hash = getattr(user, "get_session_auth_hash", None)
    password = get_hash() if callable(get_hash) else ""
    return salted_hmac(SALT, f"{user.pk}:{password}", algorithm="sha256").hexdigest()[:32]


def max_age_seconds() -> int:
    try:
        hours = float(app_settings.PREVIEW_AGE_HOURS)
    except (TypeError, ValueError):
        hours = 8.0
    return max(60, int(hours * 3600))


def read(request: HttpRequest) -> Preview | None:
    """The request's preview, when its cookie is sound and its user may preview; a cookie
    that fails any check marks the request so that the response deletes it."""
    raw = request.COOKIES.get(COOKIE_NAME)
    if not raw:
        return None
    preview = _checked(request, raw)
    if preview is None:
        request.__dict__[REFUSED] = True
    return preview


def _checked(request: HttpRequest, raw: str) -> Preview | None:
    if len(raw) > _MAX_COOKIE_CHARS:
        return None
    try:
        payload = signing.loads(raw, salt=SALT, max_age=max_age_seconds())
    except signing.BadSignature:  # tampered with, or expired
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("k"), str):
        return None
    user = getattr(request, "user", None)
    if not may_preview(user) or not constant_time_compare(payload["k"], _user_key(user)):
        return None
    return Preview.from_values(payload.get("p"))


def write(response: HttpResponseBase, preview: Preview, user: Any) -> None:
    """Start (or change) ``user``'s preview."""
    value = signing.dumps({"k": _user_key(user), "p": asdict(preview)}, salt=SALT, compress=True)
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=max_age_seconds(),
        domain=app_settings.COOKIE_DOMAIN,
        secure=app_settings.cookie_secure,
        httponly=True,
        samesite="Lax",
    )


def delete(response: HttpResponseBase) -> None:
    """End the preview."""
    response.delete_cookie(COOKIE_NAME, domain=app_settings.COOKIE_DOMAIN, samesite="Lax")
