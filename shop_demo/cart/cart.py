"""The session cart: ``request.session["cart"] == {"<product pk>": quantity, ...}``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpRequest

from shop_demo.catalog.models import Product

SESSION_KEY = "cart"
MAX_QUANTITY = 99


@dataclass
class CartLine:
    product: Product
    quantity: int

    @property
    def unit_price(self) -> Decimal:
        return self.product.price

    @property
    def total(self) -> Decimal:
        return self.product.price * self.quantity


class Cart:
    """A thin wrapper around the session dict; every change marks the session modified."""

    currency = "EUR"

    def __init__(self, request: HttpRequest) -> None:
        self.session = request.session
        raw = self.session.get(SESSION_KEY)
        self.items: dict[str, int] = raw if isinstance(raw, dict) else {}
        self._lines: list[CartLine] | None = None

    # Changing the cart ---------------------------------------------------------------

    def _limit(self, product: Product, quantity: int) -> int:
        return max(0, min(int(quantity), MAX_QUANTITY, product.stock))

    def add(self, product: Product, quantity: int = 1) -> int:
        """Add ``quantity`` more of a product; returns the quantity now in the cart."""
        key = str(product.pk)
        new = self._limit(product, self.items.get(key, 0) + quantity)
        return self._set(key, new)

    def update(self, product: Product, quantity: int) -> int:
        """Set a product's quantity (0 removes it); returns the quantity now in the cart."""
        return self._set(str(product.pk), self._limit(product, quantity))

    def remove(self, product_or_pk: Product | int) -> None:
        pk = getattr(product_or_pk, "pk", product_or_pk)
        self._set(str(pk), 0)

    def clear(self) -> None:
        self.items = {}
        self.session.pop(SESSION_KEY, None)
        self._lines = None

    def _set(self, key: str, quantity: int) -> int:
        if quantity > 0:
            self.items[key] = quantity
        else:
            self.items.pop(key, None)
        self.session[SESSION_KEY] = self.items
        self.session.modified = True
        self._lines = None
        return quantity

    # Reading the cart ----------------------------------------------------------------

    @property
    def lines(self) -> list[CartLine]:
        """The cart's lines, dropping products that were deleted or withdrawn from sale."""
        if self._lines is None:
            pks = [int(pk) for pk in self.items if pk.isdigit()]
            products = Product.objects.select_related("category").in_bulk(pks)
            lines = []
            for key, quantity in list(self.items.items()):
                product = products.get(int(key)) if key.isdigit() else None
                if product is None or not product.is_available:
                    self._set(key, 0)
                    continue
                lines.append(CartLine(product=product, quantity=quantity))
            self._lines = sorted(lines, key=lambda line: line.product.name)
        return self._lines

    def __iter__(self) -> Iterator[CartLine]:
        return iter(self.lines)

    def __len__(self) -> int:
        """The number of items (sum of quantities), without touching the database."""
        return sum(self.items.values())

    def __bool__(self) -> bool:
        return bool(self.items)

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal("0.00"))

    def quantity_of(self, product: Product) -> int:
        return self.items.get(str(product.pk), 0)
