from django.http import HttpRequest

from .cart import Cart


def cart(request: HttpRequest) -> dict:
    """``cart_count``: the number of items in the visitor's cart, for the header."""
    if not hasattr(request, "session"):
        return {"cart_count": 0}
    return {"cart_count": len(Cart(request))}
