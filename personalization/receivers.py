"""Signal receivers, connected from AppConfig.ready()."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import products
from .profiling import storage
from .profiling.visitor import VisitorProfile

logger = logging.getLogger("personalization")


@receiver(user_logged_in, dispatch_uid="personalization.attach_visitor_to_user")
def attach_visitor_to_user(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    visitor = getattr(request, "visitor", None)
    if not isinstance(visitor, VisitorProfile) or getattr(visitor, "is_preview", False):
        return
    try:
        storage.attach_user(visitor, user)
    except Exception:
        logger.exception("personalization: could not link the visitor to the user who logged in")


def forget_product(sender: Any, instance: Any, **kwargs: Any) -> None:
    try:
        products.forget_view_info(instance)
        products.forget_card(instance)
    except Exception:
        logger.warning("personalization: could not clear cached product info", exc_info=True)


def targeting_changed(sender: Any, **kwargs: Any) -> None:
    from .targeting.definitions import invalidate

    try:
        invalidate()
    except Exception:
        logger.warning("personalization: could not invalidate cached targeting", exc_info=True)


def connect_targeting_receivers() -> None:
    """Any change to segments, rules, placements (their merchandising rules too) or banners
    reloads them everywhere."""
    from django.db.models.signals import m2m_changed

    from .models import Banner, Placement, PlacementRule, Segment, SegmentRule

    for model in (Segment, SegmentRule, Placement, PlacementRule, Banner):
        uid = f"personalization.targeting.{model.__name__}"
        post_save.connect(targeting_changed, sender=model, dispatch_uid=uid + ".save")
        post_delete.connect(targeting_changed, sender=model, dispatch_uid=uid + ".delete")
    m2m_changed.connect(
        targeting_changed,
        sender=Banner.segments.through,
        dispatch_uid="personalization.targeting.banner_segments",
    )


def connect_product_receivers() -> None:
    """Clear cached product lookups when the shop's products change."""
    try:
        model = products.get_product_model()
    except ImproperlyConfigured:
        return  # reported by the system checks
    post_save.connect(forget_product, sender=model, dispatch_uid="personalization.product_saved")
    post_delete.connect(
        forget_product, sender=model, dispatch_uid="personalization.product_deleted"
    )
