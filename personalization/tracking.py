"""Recording what visitors do: product views now; orders and goals build on the same entry."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest

from .products import get_adapter
from .profiling.visitor import VisitorProfile

logger = logging.getLogger("personalization")


def _visitor(request: HttpRequest) -> VisitorProfile | None:
    visitor = getattr(request, "visitor", None)
    return visitor if isinstance(visitor, VisitorProfile) else None


def product_view(request: HttpRequest, product: Any) -> bool:
    """Record that the visitor viewed ``product`` (for views PRODUCT_VIEW_URLS cannot see).

    Returns True when the view was added to the profile; False for untracked visitors, a
    product already recorded in this request, or a product the adapter cannot read.
    Never raises: tracking must not break a page.
    """
    visitor = _visitor(request)
    if visitor is None or not visitor.is_tracked or product is None:
        return False
    try:
        adapter = get_adapter()
        return visitor.record_product_view(adapter.pk(product), adapter.category_key(product))
    except Exception:
        logger.exception("personalization: could not record a product view")
        return False
