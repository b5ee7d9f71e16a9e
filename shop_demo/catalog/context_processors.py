from django.http import HttpRequest

from .models import Category


def navigation(request: HttpRequest) -> dict:
    """Categories for the header navigation (evaluated lazily by the template)."""
    return {"nav_categories": Category.objects.only("name", "slug")}
