"""The signup popup: who is offered it, with which exposure, and what its script needs."""

from __future__ import annotations

import logging
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from .conf import app_settings
from .profiling.visitor import VisitorProfile
from .tracking import record_exposure

logger = logging.getLogger("personalization")

PLACEMENT = "signup-popup"
SIGNUP_URL_NAME = "personalization:api-signup"
EVENTS_URL_NAME = "personalization:api-events"


def popup_context(request: HttpRequest | None) -> dict[str, Any] | None:
    """The template context of the signup popup, or None when this visitor gets no popup.

    The placement is reached by every tracked visitor it targets (first visits, or
    SIGNUP_POPUP_SEGMENT), and each of them gets one exposure in their own group, whether
    the popup is then offered or not: a control visitor sees nothing, and a personalized
    visitor who already saw it this visit, dismissed it lately or signed up sees nothing
    either (content ``default``). Control and personalized visitors are so counted under the
    same condition, and the report compares signups with and without the popup.
    """
    visitor = getattr(request, "visitor", None)
    if request is None or not isinstance(visitor, VisitorProfile) or not visitor.is_tracked:
        return None
    if not _is_targeted(visitor):
        return None
    signup_url = _reverse(SIGNUP_URL_NAME)
    if not signup_url:
        return None  # the popup is off for everyone until the API is routed
    is_control = visitor.in_control_group
    if is_control or not _may_be_offered(visitor):
        record_exposure(
            request, placement=PLACEMENT, kind="popup", content="default", is_control=is_control
        )
        return None
    exposure_id = record_exposure(
        request, placement=PLACEMENT, kind="popup", content="popup", label="Signup popup"
    )
    if exposure_id is None:
        return None
    return {
        "exposure_id": exposure_id,
        "delay_ms": max(0, int(float(app_settings.SIGNUP_POPUP_DELAY_SECONDS) * 1000)),
        "exit_intent": bool(app_settings.SIGNUP_POPUP_EXIT_INTENT),
        "signup_url": signup_url,
        "discount": _percent(app_settings.SIGNUP_DISCOUNT_PERCENT),
        "coupon_days": int(app_settings.SIGNUP_COUPON_DAYS),
    }


def scripts_context(request: HttpRequest | None) -> dict[str, Any]:
    """What ``personalization.js`` needs: where to send events and signups ("" if unrouted)."""
    from . import fragments

    return {
        "events_url": _reverse(EVENTS_URL_NAME),
        "signup_url": _reverse(SIGNUP_URL_NAME),
        # Pages cached whole: the script fetches the visitor's fragments from here.
        "fragments_url": (fragments.path() or "") if fragments.enabled() else "",
    }


def _is_targeted(visitor: VisitorProfile) -> bool:
    segment = app_settings.SIGNUP_POPUP_SEGMENT
    if segment:
        return str(segment) in visitor.segments
    return visitor.is_first_visit


def _may_be_offered(visitor: VisitorProfile) -> bool:
    """Not after a signup, not soon after a dismissal, at most once per visit."""
    data = visitor._data
    if data.signed_up_at:
        return False
    if data.popup_dismissed_at is not None:
        quiet_seconds = float(app_settings.SIGNUP_POPUP_DISMISS_DAYS) * 86400
        if time.time() - data.popup_dismissed_at < quiet_seconds:
            return False
    return data.popup_shown_visit != data.visit_count


def _reverse(name: str) -> str:
    """The URL of ``name``, or "" (with a warning) when the shop has not routed it."""
    try:
        return reverse(name)
    except NoReverseMatch:
        logger.warning(
            "personalization: no URL named %r; include personalization.urls in the shop's "
            "URLconf (the signup popup and event beacons are off until then)",
            name,
        )
        return ""


def _percent(value: Any) -> str:
    """``10`` -> ``"10%"``, ``12.5`` -> ``"12.5%"``."""
    try:
        number = Decimal(str(value)).normalize()
    except (InvalidOperation, ValueError):
        return f"{value}%"
    return f"{number:f}%"
