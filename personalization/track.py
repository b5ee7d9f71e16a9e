"""The public tracking calls: ``from personalization import track``."""

from .tracking import product_view

__all__ = ["product_view"]
