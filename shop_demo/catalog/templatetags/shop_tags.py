"""Template helpers of the demo shop: ``{% load shop_tags %}``."""

from decimal import Decimal, InvalidOperation

from django import template
from django.http import QueryDict

register = template.Library()


@register.filter
def euro(value) -> str:
    """Format an amount as ``€1,234.50``."""
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return ""
    return f"€{amount:,.2f}"


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced (``page=2``)."""
    request = context.get("request")
    params = request.GET.copy() if request is not None else QueryDict(mutable=True)
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"
