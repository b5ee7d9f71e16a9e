"""The demo's product adapter: the default one, plus where the demo keeps its cart."""

from typing import Any

from personalization.products import DefaultProductAdapter


class DemoProductAdapter(DefaultProductAdapter):
    def get_queryset(self):  # type: ignore[no-untyped-def]
        return super().get_queryset().select_related("category")

    def cart_product_keys(self, request: Any) -> list[str]:
        session = getattr(request, "session", None)
        raw = session.get("cart") if session is not None else None
        return [str(key) for key in raw] if isinstance(raw, dict) else []
