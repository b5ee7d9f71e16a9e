"""A product adapter for a model whose fields differ from the defaults."""

from decimal import Decimal

from personalization.products import BaseProductAdapter


class BookAdapter(BaseProductAdapter):
    def name(self, product):
        return product.title

    def price(self, product):
        return Decimal(product.cost)

    def category_key(self, product):
        return product.genre or None

    def category_name(self, product):
        return product.genre.title() if product.genre else None

    def url(self, product):
        return f"/books/{product.isbn}/"

    def image_url(self, product):
        return None
