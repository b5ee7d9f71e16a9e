"""The product adapter for django-oscar: titles, prices, stock, categories and images read the
way Oscar reads them, through its strategy and its own models."""

from __future__ import annotations

import contextlib
import logging
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.signing import BadSignature, Signer
from django.db import models
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject, empty
from oscar.core.loading import get_class, get_model

from ...products import BaseProductAdapter

logger = logging.getLogger("personalization")

CENT = Decimal("0.01")
# Where the adapter keeps what it worked out once per product instance or request.
PURCHASE_INFO_ATTRIBUTE = "_personalization_purchase_info"
CART_KEYS_ATTRIBUTE = "_personalization_oscar_cart_keys"


class OscarProductAdapter(BaseProductAdapter):
    """Reads ``catalogue.Product`` (or the shop's fork of it).

    Recommendations offer *browsable* products: standalone and parent products that are
    public. A child product (a variant) counts as its parent everywhere personalization
    stores a product key, so viewing, adding or buying a variant is interest in the product
    customers find in the catalogue. Prices and availability come from the strategy that
    ``partner.strategy.Selector`` gives without a request (the shop's fork when it has one),
    as in Oscar's search index; tax-inclusive prices when the strategy knows the tax.
    """

    recommendations_template = "personalization/oscar/recommendations.html"
    recommendations_from_cards = True
    #: The size of the thumbnail cards show, in the thumbnailer's "WIDTHxHEIGHT" geometry
    #: (Oscar's product lists use "x155"); None shows the original image.
    thumbnail_size: str | None = "x155"

    def __init__(self, model: type[models.Model]) -> None:
        super().__init__(model)
        self.selector = get_class("partner.strategy", "Selector")()

    # Loading --------------------------------------------------------------------------
    def get_queryset(self) -> models.QuerySet:
        """Browsable products with what their cards read, in a fixed number of queries
        however many products are loaded."""
        option = get_model("catalogue", "Option")
        manager = self.model._default_manager
        public_children = manager.filter(is_public=True).prefetch_related("stockrecords")
        return (
            manager.filter(parent=None, is_public=True)
            .select_related("product_class")
            .annotate(
                # What Product.has_options reads instead of querying per product.
                has_product_class_options=Exists(
                    option.objects.filter(productclass=OuterRef("product_class"))
                ),
                has_product_options=Exists(option.objects.filter(product=OuterRef("pk"))),
            )
            .prefetch_related(
                "stockrecords",
                "images",
                Prefetch(
                    "children", queryset=public_children, to_attr="_prefetched_public_children"
                ),
                Prefetch(
                    "categories",
                    queryset=_browsable_categories(),
                    to_attr="_prefetched_browsable_categories",
                ),
            )
        )

    def get_by_field(self, field: str, value: Any) -> models.Model | None:
        """Any public product, variants included (their pages count as their parent's)."""
        queryset = self.model._default_manager.filter(is_public=True).select_related("parent")
        try:
            return queryset.get(**{field: value})
        except (self.model.DoesNotExist, self.model.MultipleObjectsReturned):
            return None
        except (ValueError, TypeError, ValidationError):  # a value of the wrong type
            return None

    # Reading --------------------------------------------------------------------------
    def pk(self, product: models.Model) -> Any:
        return getattr(product, "parent_id", None) or product.pk

    def name(self, product: models.Model) -> str:
        return str(product.get_title() or product)

    def url(self, product: models.Model) -> str | None:
        owner = _browsable(product)
        return str(owner.get_absolute_url())

    def purchase_info(self, product: models.Model) -> Any:
        """Oscar's ``PurchaseInfo`` (price, availability, stock record) for the product,
        worked out once per instance."""
        info = product.__dict__.get(PURCHASE_INFO_ATTRIBUTE)
        if info is None:
            strategy = self.selector.strategy(request=None, user=None)
            if product.is_parent:
                info = strategy.fetch_for_parent(product)
            else:
                info = strategy.fetch_for_product(product)
            product.__dict__[PURCHASE_INFO_ATTRIBUTE] = info
        return info

    def price(self, product: models.Model) -> Decimal | None:
        price = self.purchase_info(product).price
        if not price.exists:
            return None
        amount = price.incl_tax if price.is_tax_known else price.excl_tax
        if amount is None:
            return None
        return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)

    def currency(self, product: models.Model) -> str | None:
        price = self.purchase_info(product).price
        return str(price.currency) if price.exists and price.currency else None

    def is_available(self, product: models.Model) -> bool:
        if not product.is_public:
            return False
        return bool(self.purchase_info(product).availability.is_available_to_buy)

    def stock(self, product: models.Model) -> int | None:
        """How many can be bought now, as Oscar's strategy sees it: the availability's
        ``num_available`` (stock tracked: the stock record's net stock level), else the
        chosen stock record's net stock when its product class tracks stock; None for stock
        that is not tracked or not known. A parent: the sum over its public variants that
        are available, None when one of them has untracked stock."""
        if product.is_parent:
            children = getattr(product, "_prefetched_public_children", None)  # get_queryset()
            if children is None:
                children = product.children.filter(is_public=True)
            total = 0
            for child in children:
                if not self.is_available(child):
                    continue
                level = self.stock(child)
                if level is None:
                    return None
                total += max(level, 0)
            return total
        info = self.purchase_info(product)
        available = getattr(info.availability, "num_available", None)
        if available is not None:
            return int(available)
        record = info.stockrecord
        product_class = product.get_product_class()
        if record is None or product_class is None or not product_class.track_stock:
            return None
        return int(record.net_stock_level)

    def _category(self, product: models.Model) -> Any:
        categories = product.get_categories()  # the parent's for a variant; prefetched or not
        first = list(categories[:1])
        return first[0] if first else None

    def category_key(self, product: models.Model) -> str | None:
        category = self._category(product)
        return str(category.slug) if category is not None else None

    def category_name(self, product: models.Model) -> str | None:
        category = self._category(product)
        return str(category.name) if category is not None else None

    def image_url(self, product: models.Model) -> str | None:
        image = product.primary_image()
        original = getattr(image, "original", None)  # a dict when the product has no image
        if not original:
            return None
        if self.thumbnail_size:
            try:
                from oscar.core.thumbnails import get_thumbnailer

                thumbnail = get_thumbnailer().generate_thumbnail(
                    original, size=self.thumbnail_size, upscale=False
                )
                if thumbnail is not None and thumbnail.url:
                    return str(thumbnail.url)
            except Exception:
                logger.warning(
                    "personalization: no thumbnail for %s; showing the original image",
                    original.name,
                    exc_info=True,
                )
        try:
            return str(original.url)
        except ValueError:
            return None

    def card_extras(self, product: models.Model) -> dict[str, Any]:
        """Whether a single click can add it to the basket: Oscar's own rule for its compact
        add-to-basket form (not a parent, no options, on sale)."""
        addable = (
            not product.is_parent
            and not product.has_options
            and self.purchase_info(product).price.exists
            and self.is_available(product)
        )
        return {"can_add_to_basket": bool(addable)}

    # The basket -----------------------------------------------------------------------
    def cart_path(self) -> str | None:
        """Oscar's basket page."""
        try:
            return reverse("basket:summary")
        except NoReverseMatch:
            return None

    def cart_product_keys(self, request: Any) -> list[str]:
        """The products in the visitor's open basket (variants with their parents). A
        basket the request already loaded is read as it is; otherwise its lines are read in
        one query, without loading the basket and applying its offers."""
        if request is None:
            return []
        basket = _loaded_basket(request)
        if basket is not None:
            if not basket.id:
                return []
            lines = basket.all_lines()
            if getattr(lines, "_result_cache", None) is not None:  # the page read them
                return _keys((line.product_id, line.product.parent_id) for line in lines)
            return _keys(_lines_of(Q(basket_id=basket.id)))
        keys = request.__dict__.get(CART_KEYS_ATTRIBUTE)
        if keys is None:
            keys = _keys(_open_basket_lines(request))
            request.__dict__[CART_KEYS_ATTRIBUTE] = keys
        return list(keys)


def _browsable(product: models.Model) -> models.Model:
    return product.parent if getattr(product, "parent_id", None) else product


def _browsable_categories() -> models.QuerySet:
    category = get_model("catalogue", "Category")
    return category._default_manager.filter(is_public=True, ancestors_are_public=True)


def _keys(rows: Any) -> list[str]:
    keys: dict[str, None] = {}
    for product_id, parent_id in rows:
        for key in (parent_id, product_id):
            if key is not None:
                keys[str(key)] = None
    return list(keys)


def _loaded_basket(request: Any) -> Any:
    """The basket BasketMiddleware already loaded for this request, or None."""
    basket = request.__dict__.get("basket")
    if isinstance(basket, SimpleLazyObject):
        wrapped = basket._wrapped
        basket = None if wrapped is empty else wrapped
    if basket is None:
        basket = request.__dict__.get("_basket_cache")
    return basket


def _open_basket_lines(request: Any) -> list[tuple[Any, Any]]:
    """(product id, parent id) of the lines of the open baskets BasketMiddleware would load:
    the signed-in customer's and the one its cookie names."""
    owners = Q()
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        owners |= Q(basket__owner=user)
    cookie = request.COOKIES.get(getattr(settings, "OSCAR_BASKET_COOKIE_OPEN", ""))
    if cookie:
        with contextlib.suppress(BadSignature, ValueError):  # a cookie Oscar would drop
            owners |= Q(basket_id=int(Signer().unsign(cookie)), basket__owner=None)
    if not owners:
        return []
    return _lines_of(owners & Q(basket__status=get_model("basket", "Basket").OPEN))


def _lines_of(baskets: Q) -> list[tuple[Any, Any]]:
    """(product id, parent id) of the basket lines ``baskets`` selects: one light query."""
    line_model = get_model("basket", "Line")
    rows = line_model._default_manager.filter(baskets).values_list(
        "product_id", "product__parent_id"
    )
    return list(rows)
