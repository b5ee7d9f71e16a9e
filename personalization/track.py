"""The public tracking calls: ``from personalization import track``."""

from .tracking import TrackingError, add_to_cart, goal, order, product_view

__all__ = ["TrackingError", "add_to_cart", "goal", "order", "product_view"]
