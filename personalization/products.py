"""The product adapter: how personalization reads any shop's product model."""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db import models
from django.urls import get_urlconf
from django.utils import translation
from django.utils.module_loading import import_string

from . import resilience
from .conf import app_settings, cached_on_settings, on_settings_change

logger = logging.getLogger("personalization")

PRODUCT_INFO_CACHE_SECONDS = 3600


class BaseProductAdapter:
    """Reads the fields personalization needs from a product instance.

    A shop whose product model differs from the defaults subclasses this (or
    :class:`DefaultProductAdapter`) and names it in ``PERSONALIZATION["PRODUCT_ADAPTER"]``.
    """

    #: A template that ``{% recommendations %}`` renders with before the core one (a
    #: placement's own ``recommendations_<placement>.html`` still comes first).
    recommendations_template: str | None = None
    #: Whether ``{% recommendations %}`` renders from cached product cards (see :func:`cards`),
    #: which costs no SQL when warm, rather than from model instances.
    recommendations_from_cards: bool = False

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model

    def get_queryset(self) -> models.QuerySet[models.Model]:
        return self.model._default_manager.all()

    def get_by_field(self, field: str, value: Any) -> models.Model | None:
        """The product whose ``field`` is ``value``; None if unknown or of the wrong type."""
        try:
            return self.get_queryset().get(**{field: value})
        except (self.model.DoesNotExist, self.model.MultipleObjectsReturned):  # type: ignore[attr-defined]
            return None
        except (ValueError, TypeError, ValidationError):
            return None

    def pk(self, product: models.Model) -> Any:
        return product.pk

    def name(self, product: models.Model) -> str:
        raise NotImplementedError

    def price(self, product: models.Model) -> Decimal | None:
        raise NotImplementedError

    def category_key(self, product: models.Model) -> str | None:
        raise NotImplementedError

    def category_name(self, product: models.Model) -> str | None:
        raise NotImplementedError

    def url(self, product: models.Model) -> str | None:
        raise NotImplementedError

    def image_url(self, product: models.Model) -> str | None:
        raise NotImplementedError

    def is_available(self, product: models.Model) -> bool:
        return True

    def currency(self, product: models.Model) -> str | None:
        """The ISO 4217 code of :meth:`price`; None when the shop has a single currency."""
        return None

    def card_extras(self, product: models.Model) -> dict[str, Any]:
        """More JSON-serializable values for the product's cached card (what a shop's
        recommendations template may need beyond the standard fields)."""
        return {}

    def is_replenishable(self, product: models.Model) -> bool:
        """Whether customers buy it again (consumables): the *buy again* strategy offers only
        these."""
        return False

    def stock(self, product: models.Model) -> int | None:
        """How many can be sold now, for a placement's *minimum stock* rule; None: unknown
        (such products are kept). Reads a whole-number ``stock`` field or attribute when the
        product has one."""
        return _whole_number(getattr(product, "stock", None))

    def margin(self, product: models.Model) -> Decimal | None:
        """The product's margin, for a placement's *boost by margin* rule, in any unit the
        shop likes (an amount, a percentage): only its ratio to the best margin among the
        candidates counts. None: unknown (no boost)."""
        return None

    def cart_path(self) -> str | None:
        """The shop's cart page (a path), for the cart-abandonment email's button when
        ``EMAIL_CART_PATH`` is not set; None: the home page."""
        return None

    def cart_product_keys(self, request: Any) -> list[str]:
        """Primary keys (as strings) of the products in the visitor's cart, which
        recommendations leave out. The shop's adapter knows where its cart lives."""
        return []


class DefaultProductAdapter(BaseProductAdapter):
    """Reads ``name``/``title``, ``price``, ``category`` (FK or text), ``get_absolute_url()``
    and ``image`` where the model has them; availability from ``is_available``/``available``/
    ``is_active`` and ``stock`` when present."""

    def _category_field(self) -> models.Field[Any, Any] | models.ForeignObjectRel | None:
        try:
            return self.model._meta.get_field("category")
        except FieldDoesNotExist:
            return None

    def get_queryset(self) -> models.QuerySet[models.Model]:
        queryset = super().get_queryset()
        field = self._category_field()
        if field is not None and field.is_relation and field.many_to_one:
            queryset = queryset.select_related("category")
        return queryset

    def name(self, product: models.Model) -> str:
        for attribute in ("name", "title"):
            value = getattr(product, attribute, None)
            if value:
                return str(value)
        return str(product)

    def price(self, product: models.Model) -> Decimal | None:
        return _decimal(getattr(product, "price", None))

    def category_key(self, product: models.Model) -> str | None:
        field = self._category_field()
        if field is None:
            return None
        if field.is_relation:
            category = getattr(product, "category", None)
            if category is None:
                return None
            slug = getattr(category, "slug", None)
            return str(slug) if slug else str(category.pk)
        value = getattr(product, "category", None)
        return str(value).strip() or None if value is not None else None

    def category_name(self, product: models.Model) -> str | None:
        field = self._category_field()
        if field is None:
            return None
        category = getattr(product, "category", None)
        if category is None:
            return None
        if field.is_relation:
            return str(getattr(category, "name", None) or category)
        return str(category)

    def url(self, product: models.Model) -> str | None:
        get_url = getattr(product, "get_absolute_url", None)
        return str(get_url()) if callable(get_url) else None

    def image_url(self, product: models.Model) -> str | None:
        image = getattr(product, "image", None)
        if not image:
            return None
        try:
            return str(image.url)
        except (AttributeError, ValueError):
            return str(image) if isinstance(image, str) else None

    def is_replenishable(self, product: models.Model) -> bool:
        """A true ``replenishable`` or ``is_replenishable`` field or attribute."""
        for attribute in ("replenishable", "is_replenishable"):
            if getattr(product, attribute, False) is True:
                return True
        return False

    def margin(self, product: models.Model) -> Decimal | None:
        """A ``margin`` field or attribute when the product has one."""
        return _decimal(getattr(product, "margin", None))

    def is_available(self, product: models.Model) -> bool:
        for attribute in ("is_available", "available", "is_active"):
            value = getattr(product, attribute, None)
            if value is not None and not value:
                return False
        stock = getattr(product, "stock", None)
        return not (isinstance(stock, int) and stock <= 0)


def _decimal(value: Any) -> Decimal | None:
    """``value`` as a finite Decimal; None when it is None or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _whole_number(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (an int, or a Decimal or float without
    a fraction); None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = _decimal(value) if isinstance(value, Decimal | float) else None
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def valid_keys(keys: Iterable[Any], model: type[models.Model] | None = None) -> list[str]:
    """The keys, in order, that the product model's primary key accepts: lists and clients
    may name ids of another type (a slug where the key is a number), which a query rejects."""
    pk_field = (model or get_product_model())._meta.pk
    valid = []
    for key in keys:
        try:
            pk_field.to_python(key)
        except ValidationError:
            continue
        valid.append(str(key))
    return valid


def get_product_model() -> type[models.Model]:
    """The model named by PRODUCT_MODEL; raises ImproperlyConfigured when it is not usable."""
    label = app_settings.PRODUCT_MODEL
    if not label or not isinstance(label, str):
        raise ImproperlyConfigured('PERSONALIZATION["PRODUCT_MODEL"] must name "app_label.Model".')
    try:
        return apps.get_model(label, require_ready=False)
    except (ValueError, LookupError) as exc:
        raise ImproperlyConfigured(
            f'PERSONALIZATION["PRODUCT_MODEL"] refers to {label!r}, '
            "which is not an installed model."
        ) from exc


@on_settings_change
def forget_all_view_info() -> None:
    """Drop this process's memo of product lookups and cards (the shared cache keeps its
    entries)."""
    _local_info.clear()
    _local_cards.clear()
    _local_products.clear()
    _local_links.clear()


@cached_on_settings
@functools.lru_cache(maxsize=1)
def get_adapter() -> BaseProductAdapter:
    """The configured adapter, built once per process (and again when settings change)."""
    adapter_class = import_string(app_settings.PRODUCT_ADAPTER)
    adapter: BaseProductAdapter = adapter_class(get_product_model())
    return adapter


def _info_cache_key(field: str, value: Any) -> str:
    model = get_product_model()._meta.label_lower
    digest = hashlib.blake2b(f"{field}\x00{value}".encode(), digest_size=12).hexdigest()
    return f"pzn:v1:product:{model}:{digest}"


# A small in-process memo in front of the shared cache: product pages are hot, and a product's
# id and category rarely change. Saves in this process clear it at once, others within a minute.
_LOCAL_INFO_SECONDS = 60.0
_LOCAL_INFO_MAX = 4096
_local_info: dict[tuple[str, str], tuple[float, tuple[Any, ...]]] = {}


def view_info(field: str, value: Any) -> tuple[Any, str | None] | None:
    """(pk, category key) of the product whose ``field`` is ``value``; cached, so warm product
    pages cost the middleware no SQL. Returns None for unknown products."""
    local_key = (field, str(value))
    now = time.monotonic()
    hit = _local_info.get(local_key)
    if hit is not None and hit[0] > now:
        return hit[1] or None
    cache = resilience.cache()  # a miss while the cache fails: the database answers
    key = _info_cache_key(field, value)
    cached = cache.get(key)
    if cached is None:
        adapter = get_adapter()
        product = adapter.get_by_field(field, value)
        info = (adapter.pk(product), adapter.category_key(product)) if product else None
        cached = info or ()
        # Unknown values are kept briefly, so a scan of bad slugs costs one query each.
        cache.set(key, cached, PRODUCT_INFO_CACHE_SECONDS if info else 60)
    if len(_local_info) >= _LOCAL_INFO_MAX:
        _local_info.clear()
    _local_info[local_key] = (now + _LOCAL_INFO_SECONDS, tuple(cached))
    return tuple(cached) or None


def forget_view_info(product: models.Model) -> None:
    """Drop cached lookups for a product that was saved or deleted."""
    cache = resilience.cache()
    keys = []
    for field in set((app_settings.PRODUCT_VIEW_URLS or {}).values()):
        value = getattr(product, field, None)
        if value is not None:
            keys.append(_info_cache_key(field, value))
            _local_info.pop((field, str(value)), None)
    if keys:
        cache.delete_many(keys)


# Product cards: what an API or an email shows of a recommended product, cached like view info.
_local_cards: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}


def _card_cache_key(pk: str, language: str) -> str:
    model = get_product_model()._meta.label_lower
    # Per adapter: another adapter (a shop that switches) writes cards of another shape. Per
    # language: a card's URL (``i18n_patterns``) and name (translated fields) may differ.
    adapter = app_settings.PRODUCT_ADAPTER
    digest = hashlib.blake2b(
        f"{adapter}\x00{language}\x00{pk}".encode(), digest_size=12
    ).hexdigest()
    # v2: cards carry what merchandising rules read (category, stock, margin).
    return f"pzn:v2:card:{model}:{digest}"


def _languages() -> set[str]:
    """Every language a card may have been made in: the project's, and none."""
    return {"", settings.LANGUAGE_CODE, *(code for code, _name in settings.LANGUAGES)}


def _card(adapter: BaseProductAdapter, product: models.Model) -> dict[str, Any]:
    price = adapter.price(product)
    # Adapters written before currency() and card_extras() existed need not define them.
    currency = getattr(adapter, "currency", None)
    extras = getattr(adapter, "card_extras", None)
    return {
        **(extras(product) if extras else {}),
        "id": str(adapter.pk(product)),
        "name": adapter.name(product),
        "url": adapter.url(product),
        "price": str(price) if price is not None else None,
        "image_url": adapter.image_url(product),
        "available": bool(adapter.is_available(product)),
        "currency": currency(product) if currency else None,
        "merchandising": merchandising_facts(adapter, product),
    }


def merchandising_facts(adapter: BaseProductAdapter, product: models.Model) -> dict[str, Any]:
    """What a placement's merchandising rules read of a product, JSON-serializable: its
    category key, stock and margin (as text), each None when unknown or when the adapter
    cannot say (adapters written before stock() and margin() existed need not define them;
    an adapter method that raises is logged)."""
    facts: dict[str, Any] = {"category": None, "stock": None, "margin": None}
    for name, read in (
        ("category", getattr(adapter, "category_key", None)),
        ("stock", getattr(adapter, "stock", None)),
        ("margin", getattr(adapter, "margin", None)),
    ):
        if read is None:
            continue
        try:
            value = read(product)
        except NotImplementedError:
            continue
        except Exception:
            logger.warning("personalization: the adapter's %s() failed", name, exc_info=True)
            continue
        if value is None:
            continue
        if name == "category":
            facts[name] = str(value)
        elif name == "stock":
            facts[name] = _whole_number(value)
        else:
            number = _decimal(value)
            facts[name] = str(number) if number is not None else None
    return facts


def cards(keys: list[str]) -> dict[str, dict[str, Any]]:
    """Cards (id, name, url, price, image_url, available, currency, what merchandising rules
    read — :func:`merchandising_facts` — and the adapter's
    :meth:`~BaseProductAdapter.card_extras`) of the products with these primary
    keys, by key; unknown keys are left out. Cached per product, so warm calls cost no SQL;
    misses cost one query together."""
    now = time.monotonic()
    language = translation.get_language() or ""
    found: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for key in dict.fromkeys(str(key) for key in keys):
        hit = _local_cards.get((language, key))
        if hit is not None and hit[0] > now:
            if hit[1] is not None:
                found[key] = hit[1]
        else:
            missing.append(key)
    if not missing:
        return found
    cache = resilience.cache()
    cache_seconds, local_seconds = _card_seconds(cache.backend)
    try:
        cached = cache.get_many([_card_cache_key(key, language) for key in missing])
    except Exception:
        logger.warning("personalization: cache unavailable for product cards", exc_info=True)
        cached = {}
    fresh: dict[str, Any] = {}
    unknown = [key for key in missing if _card_cache_key(key, language) not in cached]
    if unknown:
        adapter = get_adapter()
        valid = valid_keys(unknown)
        loaded = {}
        if valid:
            for product in adapter.get_queryset().filter(pk__in=valid):
                card = _card(adapter, product)
                loaded[card["id"]] = card
        for key in unknown:
            known = loaded.get(key)
            cached[_card_cache_key(key, language)] = known or {}
            fresh[_card_cache_key(key, language)] = known or {}
        try:
            cache.set_many(fresh, cache_seconds)
        except Exception:
            logger.warning("personalization: could not cache product cards", exc_info=True)
    if len(_local_cards) >= _LOCAL_INFO_MAX:
        _local_cards.clear()
    for key in missing:
        entry = cached.get(_card_cache_key(key, language)) or None
        _local_cards[(language, key)] = (now + local_seconds, entry)
        if entry is not None:
            found[key] = entry
    return found


def _card_seconds(cache: Any) -> tuple[float, float]:
    """How long a card stays in the cache, and in this process's memo. A save clears the
    card in this process only when the cache lives in each process (local memory): there, a
    card is at most ``SHARED_STATE_SECONDS`` old."""
    from .versioning import is_per_process, shared_state_seconds

    if is_per_process(cache):
        half = shared_state_seconds() / 2
        return half, half
    return PRODUCT_INFO_CACHE_SECONDS, _LOCAL_INFO_SECONDS


def forget_card(product: models.Model) -> None:
    """Forget what is kept of a product that was saved or deleted: its cards in every
    language, here and in the shared cache, and this process's memo of it and its links."""
    key = str(product.pk)
    languages = _languages() | {translation.get_language() or ""}
    for language in languages:
        _local_cards.pop((language, key), None)
    _local_products.pop(key, None)
    _local_links.pop(key, None)
    resilience.cache().delete_many([_card_cache_key(key, language) for language in languages])


# The products a template renders: model instances, memoised in this process like the cards
# (never shared: instances are not what a shared cache should hold), each handed out as a copy
# so a template or a shop's code that marks one for its visitor marks it for nobody else.
_local_products: dict[str, tuple[float, models.Model | None]] = {}


def instances(keys: Iterable[Any]) -> dict[str, models.Model]:
    """The shop's products (from the adapter's queryset) with these primary keys, by key;
    unknown keys are left out. Memoised in this process as long as a card is
    (``_card_seconds``) and forgotten when the product is saved here, so warm calls cost no
    SQL and misses one query together. The copies share related objects loaded with the
    product. Raises when the query fails."""
    now = time.monotonic()
    found: dict[str, models.Model] = {}
    missing: list[str] = []
    for key in dict.fromkeys(str(key) for key in keys):
        hit = _local_products.get(key)
        if hit is not None and hit[0] > now:
            if hit[1] is not None:
                found[key] = copy.copy(hit[1])
        else:
            missing.append(key)
    if not missing:
        return found
    adapter = get_adapter()
    valid = valid_keys(missing, adapter.model)
    loaded: dict[str, models.Model] = {}
    if valid:
        rows = adapter.get_queryset().filter(pk__in=valid)
        loaded = {str(adapter.pk(item)): item for item in rows}
    _, local_seconds = _card_seconds(resilience.cache().backend)
    if len(_local_products) >= _LOCAL_INFO_MAX:
        _local_products.clear()
    for key in missing:
        item = loaded.get(key)
        _local_products[key] = (now + local_seconds, item)
        if item is not None:
            found[key] = copy.copy(item)
    return found


# Where a rendered product links to and its picture: reversing a URL and finding an image cost
# more than the rest of an item, and change only when the product is saved.
_local_links: dict[str, dict[tuple[str, str], tuple[float, str | None, str | None]]] = {}


def links(
    adapter: BaseProductAdapter, products: Sequence[models.Model]
) -> list[tuple[str | None, str | None]]:
    """(url, image_url) of each of ``products`` as the adapter gives them, memoised in this
    process per language and URLconf as long as a card is, and forgotten when the product is
    saved here."""
    where = (translation.get_language() or "", str(get_urlconf() or ""))
    now = time.monotonic()
    found: list[tuple[str | None, str | None]] = []
    for product in products:
        key = str(adapter.pk(product))
        hit = _local_links.get(key, {}).get(where)
        if hit is not None and hit[0] > now:
            found.append((hit[1], hit[2]))
            continue
        url, image_url = adapter.url(product), adapter.image_url(product)
        _, local_seconds = _card_seconds(resilience.cache().backend)
        if len(_local_links) >= _LOCAL_INFO_MAX:
            _local_links.clear()
        _local_links.setdefault(key, {})[where] = (now + local_seconds, url, image_url)
        found.append((url, image_url))
    return found
