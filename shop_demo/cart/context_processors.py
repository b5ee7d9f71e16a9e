from django.conf import settings
from django.http import HttpRequest

from .cart import Cart


def cart(request: HttpRequest) -> dict:
    """``cart_count``: the number of items in the visitor's cart, for the header."""
    if getattr(settings, "DEMO_PAGE_CACHE", False):
        return {"cart_count": None}  # pages cached whole: nothing of the session
    if not hasattr(request, "session"):
        return {"cart_count": 0}
    return {"cart_count": len(Cart(request))}
