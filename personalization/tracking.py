"""Recording what visitors see and do: product views, cart adds, exposures, orders, goals."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.http import HttpRequest
from django.utils import timezone

from . import deferred, holding
from .conf import app_settings
from .money import AmountError, parse_amount
from .products import get_adapter
from .profiling import storage
from .profiling.visitor import VisitorProfile

logger = logging.getLogger("personalization")

EXPOSURES_ATTRIBUTE = "_personalization_exposures"
INTERACTIONS_ATTRIBUTE = "_personalization_interactions"

# Goal name -> conversion kind; any other name is an "other" goal.
GOAL_KINDS = {
    "purchase": "purchase",
    "order": "purchase",
    "signup": "lead",
    "account_signup": "lead",
    "newsletter_signup": "lead",
    "lead": "lead",
    "form_submit": "lead",
    "contact_form": "lead",
    "click": "engagement",
    "add_to_cart": "engagement",
    "engagement": "engagement",
    "app_download": "app_download",
}
MAX_GOAL_LENGTH = 100
MAX_ORDER_ID_LENGTH = 64


class TrackingError(ValueError):
    """Invalid input to a tracking call (nothing was written)."""


def _visitor(request: HttpRequest) -> VisitorProfile | None:
    """The visitor to record for; None also while staff preview the site (nothing a preview
    shows or does is recorded: no exposure, interaction, cart addition or conversion)."""
    visitor = getattr(request, "visitor", None)
    if not isinstance(visitor, VisitorProfile) or visitor.is_preview:
        return None
    return visitor


# Views ----------------------------------------------------------------------------------
def product_view(request: HttpRequest, product: Any) -> bool:
    """Record that the visitor viewed ``product`` (for views PRODUCT_VIEW_URLS cannot see).

    Returns True when the view was added to the profile; False for untracked visitors, a
    product already recorded in this request, or a product the adapter cannot read.
    Never raises: tracking must not break a page.
    """
    visitor = _visitor(request)
    if visitor is None or not visitor.is_tracked or product is None:
        return False
    try:
        adapter = get_adapter()
        pk = adapter.pk(product)
        if not visitor.is_loaded and pk not in visitor._viewed_this_request:
            # Like a PRODUCT_VIEW_URLS page: added to the profile after the response.
            known = (pk, adapter.category_key(product))
            at, country = visitor._now, country_of(visitor)
            if deferred.defer_view(visitor.id, "", "", at, country, known):
                visitor._viewed_this_request.add(pk)
                return True
        if not visitor.record_product_view(pk, adapter.category_key(product)):
            return False
        queue_interaction(request, pk)
        return True
    except Exception:
        logger.exception("personalization: could not record a product view")
        return False


def add_to_cart(request: HttpRequest, product: Any = None, quantity: int = 1) -> bool:
    """Record a cart addition: it feeds abandoned-cart rules. Never raises."""
    visitor = _visitor(request)
    if visitor is None or not visitor.is_tracked:
        return False
    try:
        from .models import Event

        product_key = str(get_adapter().pk(product)) if product is not None else ""
        visitor._data.cart_updated_at = time.time()
        visitor.dirty = True
        rows: list[Any] = [
            Event(visitor_id=visitor.id, kind=Event.ADD_TO_CART, product_id=product_key)
        ]
        if product_key and app_settings.RECORD_PRODUCT_INTERACTIONS:
            from .models import ProductInteraction

            rows.append(
                ProductInteraction(
                    visitor_id=visitor.id,
                    product_id=product_key[:64],
                    kind=ProductInteraction.CART,
                    quantity=max(1, min(int(quantity or 1), 10_000)),
                    country=country_of(visitor),
                )
            )
        if visitor.cookieless:
            holding.hold(visitor, rows)
        else:
            write_rows(holding.by_model(rows))
        return True
    except Exception:
        logger.exception("personalization: could not record a cart addition")
        return False


# Exposures ------------------------------------------------------------------------------
def record_exposure(
    request: HttpRequest,
    *,
    placement: str,
    kind: str,
    content: str,
    label: str = "",
    items: Iterable[Any] = (),
    is_control: bool = False,
    segment: str = "",
) -> str | None:
    """Queue one exposure for this request and return its id for the markup.

    Nothing is written here: the middleware writes a request's exposures in one query when
    the response leaves. Untracked visitors (bots, opt-outs) get None and nothing is kept.
    """
    visitor = _visitor(request)
    if visitor is None or not visitor.is_tracked:
        return None
    from .models import Exposure

    exposure = Exposure(
        id=uuid.uuid4(),
        visitor_id=visitor.id,
        placement=placement[:100],
        kind=kind,
        content=content[:100],
        content_label=label[:200],
        items=[_jsonable_key(item) for item in items],
        segments=sorted(visitor.segments),
        segment=segment[:100],
        is_control=is_control,
    )
    pending = request.__dict__.setdefault(EXPOSURES_ATTRIBUTE, [])
    pending.append(exposure)
    return str(exposure.id)


def pending_exposures(request: HttpRequest) -> list[Any]:
    pending: list[Any] = request.__dict__.get(EXPOSURES_ATTRIBUTE, [])
    return pending


def queue_interaction(request: HttpRequest, product_pk: Any) -> None:
    """Queue a product view for the recommender; written with the page's exposures."""
    visitor = _visitor(request)
    if visitor is None or not visitor.is_tracked or not app_settings.RECORD_PRODUCT_INTERACTIONS:
        return
    from .models import ProductInteraction

    request.__dict__.setdefault(INTERACTIONS_ATTRIBUTE, []).append(
        ProductInteraction(
            visitor_id=visitor.id,
            product_id=str(product_pk)[:64],
            kind=ProductInteraction.VIEW,
            country=country_of(visitor),
        )
    )


def country_of(visitor: VisitorProfile) -> str:
    """The visitor's country for the recommender's *popular near you*; "" when unknown."""
    try:
        return (visitor.current_geo().country_code or "")[:2]
    except Exception:
        return ""


def flush_exposures(request: HttpRequest) -> int:
    """Write the request's exposures (one statement), with its product views when they are
    not left to the background writer (:mod:`personalization.deferred`); returns how many
    exposures. A failure raises."""
    if (
        EXPOSURES_ATTRIBUTE not in request.__dict__
        and INTERACTIONS_ATTRIBUTE not in request.__dict__
    ):
        return 0  # most pages: nothing to write
    from .models import Exposure, ProductInteraction

    visitor = _visitor(request)
    views = request.__dict__.pop(INTERACTIONS_ATTRIBUTE, None) or []
    pending = request.__dict__.pop(EXPOSURES_ATTRIBUTE, None) or []
    if visitor is not None:  # a login during the request may have changed the id
        for row in (*views, *pending):
            row.visitor_id = visitor.id
        if visitor.cookieless:  # written once the cookie comes back, see holding
            holding.hold(visitor, [*pending, *views])
            return len(pending)
    if views and deferred.defer_views(views):  # written by the process's background writer
        views = []
    write_rows([(ProductInteraction, views), (Exposure, pending)])
    return len(pending)


def write_rows(batches: list[tuple[Any, list[Any]]]) -> None:
    """Insert the rows of one or more models in as few statements as the database allows,
    with no transaction of their own: BEGIN and COMMIT would be two more round trips, and a
    single statement is atomic by itself.

    On PostgreSQL every row goes in ONE statement: each model's multi-row INSERT but the last
    becomes a data-modifying ``WITH`` query of the last one (``WITH pzn_insert_0 AS (INSERT
    INTO …) INSERT INTO …``), which PostgreSQL runs exactly once, to completion, as part of
    the statement; the values are bound parameters. Databases without data-modifying ``WITH``
    (SQLite, MySQL, Oracle) get one multi-row INSERT per model, each atomic on its own; one
    that fails does not keep the others' rows out, and the first failure is raised once all
    were tried. Inside a caller's transaction the statements simply join it, as those of
    ``bulk_create`` do. Model signals are not sent, as with ``bulk_create``.
    """
    by_alias: dict[str, list[tuple[str, list[Any]]]] = {}
    for model, rows in batches:
        if rows:
            alias = router.db_for_write(model)
            by_alias.setdefault(alias, []).extend(_insert_sql(model, rows, connections[alias]))
    failure: DatabaseError | None = None
    for alias, statements in by_alias.items():
        connection = connections[alias]
        if connection.vendor == "postgresql" and len(statements) > 1:
            *first, last = statements
            ctes = ", ".join(f"pzn_insert_{n} AS ({sql})" for n, (sql, _) in enumerate(first))
            statements = [(f"WITH {ctes} {last[0]}", [p for _, ps in statements for p in ps])]
        if _commits_without_waiting(connection):
            try:
                _execute_without_waiting(connection, alias, statements)
            except DatabaseError as exc:
                failure = failure or exc
            continue
        with connection.cursor() as cursor:
            for sql, params in statements:
                try:
                    cursor.execute(sql, params)
                except DatabaseError as exc:
                    failure = failure or exc
    if failure is not None:
        raise failure
    for model, rows in batches:
        for row in rows:
            row._state.adding, row._state.db = False, router.db_for_write(model)


ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF"


@contextlib.contextmanager
def without_waiting(using: str = "default") -> Iterator[None]:
    """A transaction whose commit does not wait for the disk where
    :func:`_commits_without_waiting` allows it (PostgreSQL, ``TRACKING_ASYNC_COMMIT``, no
    transaction of the caller's); elsewhere, nothing special. For writes whose loss in a
    crash of the database's machine costs a record's last fraction of a second, not money."""
    connection = connections[using]
    if not _commits_without_waiting(connection):
        yield
        return
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(ASYNC_COMMIT)
        yield


def _commits_without_waiting(connection: Any) -> bool:
    """Whether these rows are committed without waiting for the disk: on PostgreSQL, when
    ``TRACKING_ASYNC_COMMIT`` is on and no transaction of the caller's is open (whose own
    commit must keep its durability)."""
    return (
        connection.vendor == "postgresql"
        and bool(app_settings.TRACKING_ASYNC_COMMIT)
        and not connection.in_atomic_block
    )


def _execute_without_waiting(connection: Any, alias: str, statements: list[Any]) -> None:
    """Run the statements in a transaction of their own with ``synchronous_commit`` off for
    it alone: PostgreSQL then commits without waiting for the write-ahead log to reach the
    disk (the page does not wait a disk flush for its analytics rows). A crash of the database
    server's machine may lose the last fraction of a second of such rows, never corrupt or
    half-write them; every other write of the shop keeps its durability. With client-side
    parameter binding (Django's default for psycopg 3, and psycopg2) the setting travels with
    the first statement, in one round trip."""
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        first, *rest = statements
        if _binds_on_client(cursor):
            cursor.execute(f"{ASYNC_COMMIT}; {first[0]}", first[1])
        else:
            cursor.execute(ASYNC_COMMIT)
            cursor.execute(*first)
        for sql, params in rest:
            cursor.execute(sql, params)


def _binds_on_client(cursor: Any) -> bool:
    raw = getattr(cursor, "cursor", cursor)
    kind = type(raw)
    return kind.__module__.startswith("psycopg2") or "ClientCursor" in {
        base.__name__ for base in kind.__mro__
    }


def _insert_sql(model: Any, rows: list[Any], connection: Any) -> list[tuple[str, list[Any]]]:
    """The multi-row INSERT statements (SQL, parameters) that ``bulk_create`` would run for
    these rows, without running them: Django prepares every value (defaults, ``pre_save``,
    the database's types) and splits batches the database cannot take at once."""
    from django.db.models import AutoField
    from django.db.models.sql import InsertQuery

    fields = [field for field in model._meta.concrete_fields if not field.generated]
    for row in rows:
        if row.pk is None:
            row.pk = model._meta.pk.get_pk_value_on_save(row)
    with_pk = [row for row in rows if row.pk is not None]
    without_pk = [row for row in rows if row.pk is None]
    statements = []
    for group, group_fields in (
        (with_pk, fields),
        (without_pk, [field for field in fields if not isinstance(field, AutoField)]),
    ):
        size = max(connection.ops.bulk_batch_size(group_fields, group), 1) if group else 1
        for start in range(0, len(group), size):
            batch = group[start : start + size]
            key = (model, connection.alias, tuple(f.attname for f in group_fields), len(batch))
            sql = _INSERT_SQL.get(key, "")
            params = _prepared(group_fields, batch, connection) if sql else None
            if sql and params is not None:
                statements.append((sql, [value for row in params for value in row]))
                continue
            query = InsertQuery(model)
            query.insert_values(group_fields, batch)
            compiled = [(sql, list(params)) for sql, params in
                        query.get_compiler(connection=connection).as_sql()]  # fmt: skip
            if key not in _INSERT_SQL and len(_INSERT_SQL) < 256:
                _INSERT_SQL[key] = _reusable(compiled, group_fields, batch, connection)
            statements.extend(compiled)
    return statements


# The text of a multi-row INSERT depends only on the model, the database, the fields and the
# number of rows: Django's compiler writes it once, and later rows only have their values
# prepared as that compiler prepares them (:func:`_prepared`). None: a shape whose statement
# is not one value per row and field (PostgreSQL's UNNEST of several rows takes an array per
# column), left to the compiler.
_INSERT_SQL: dict[tuple[Any, str, tuple[str, ...], int], str | None] = {}


def _reusable(
    compiled: list[tuple[str, list[Any]]], fields: list[Any], rows: list[Any], connection: Any
) -> str | None:
    """The compiler's statement when it takes the values row after row, as
    :func:`_prepared` gives them (checked on these rows); None otherwise."""
    if len(compiled) != 1 or any(hasattr(field, "get_placeholder") for field in fields):
        return None
    sql, params = compiled[0]
    prepared = _prepared(fields, rows, connection)
    if prepared is None:
        return None
    flat = [value for row in prepared for value in row]
    return sql if repr(flat) == repr(params) else None


def _prepared(fields: list[Any], rows: list[Any], connection: Any) -> list[list[Any]] | None:
    """Each row's values, prepared as Django's compiler prepares them (each field's
    ``pre_save``, then ``get_db_prep_save``); None when a value is an expression, which only
    the compiler can write."""
    prepared = []
    for row in rows:
        values = []
        for field in fields:
            value = field.pre_save(row, True)
            if hasattr(value, "resolve_expression"):
                return None
            values.append(field.get_db_prep_save(value, connection=connection))
        prepared.append(values)
    return prepared


def _jsonable_key(value: Any) -> Any:
    return value if isinstance(value, int | str) else str(value)


# Conversions ----------------------------------------------------------------------------
def goal(request: HttpRequest, name: str, *, kind: str | None = None) -> Any:
    """Record that the visitor reached a goal (``"newsletter_signup"``, ``"app_download"``…).

    Returns the Conversion, or None for untracked visitors. A bad name raises TrackingError.
    """
    from .models import Conversion

    if not isinstance(name, str) or not name.strip() or len(name) > MAX_GOAL_LENGTH:
        raise TrackingError(f"A goal needs a name of 1 to {MAX_GOAL_LENGTH} characters.")
    name = name.strip()
    kind = kind or GOAL_KINDS.get(name, Conversion.OTHER)
    if kind not in dict(Conversion.KIND_CHOICES):
        raise TrackingError(f"Unknown conversion kind {kind!r}.")
    visitor = _visitor(request)
    if visitor is None or not visitor.is_tracked:
        return None
    conversion = Conversion(
        visitor_id=visitor.id, kind=kind, goal=name, is_control=visitor.in_control_group
    )
    if visitor.cookieless:  # returned unsaved; written once the cookie comes back
        holding.hold(visitor, [conversion])
    else:
        conversion.save()
    return conversion


def _money(value: Any, what: str) -> Decimal:
    try:
        amount = parse_amount(value)
    except AmountError as exc:
        expected = "a number" if exc.reason == "not-a-number" else "zero or more"
        raise TrackingError(f"{what} must be {expected}, not {value!r}.") from None
    return amount.quantize(Decimal("0.01"))


def _order_items(items: Iterable[Any]) -> list[list[Any]]:
    cleaned = []
    for item in items or ():
        try:
            product_pk, quantity, unit_price = item
            quantity = int(quantity)
        except (TypeError, ValueError):
            raise TrackingError(
                f"Each item must be (product_pk, quantity, unit_price), not {item!r}."
            ) from None
        if quantity <= 0:
            raise TrackingError(f"An item's quantity must be positive, not {quantity!r}.")
        price = _money(unit_price, "An item's unit price")
        cleaned.append([_jsonable_key(product_pk), quantity, str(price)])
    return cleaned


def order(
    request: HttpRequest,
    order_id: str,
    total: Any,
    currency: str = "EUR",
    items: Iterable[Any] = (),
) -> Any:
    """Record an order once per ``order_id``, however often it is reported.

    Returns the Conversion (the existing one for a replayed order_id), or None for untracked
    visitors. Bad input raises TrackingError and writes nothing.
    """
    from .models import Conversion

    if not isinstance(order_id, str | int) or not str(order_id).strip():
        raise TrackingError("An order needs an order_id.")
    order_id = str(order_id).strip()
    if len(order_id) > MAX_ORDER_ID_LENGTH:
        raise TrackingError(f"order_id is longer than {MAX_ORDER_ID_LENGTH} characters.")
    amount = _money(total, "The order total")
    if not isinstance(currency, str) or len(currency.strip()) != 3:
        raise TrackingError("currency must be a three-letter ISO 4217 code.")
    lines = _order_items(items)
    visitor = _visitor(request)
    if visitor is None or not visitor.is_tracked:
        return None
    try:
        with transaction.atomic():
            at = timezone.now()
            conversion = Conversion.objects.create(
                visitor_id=visitor.id,
                kind=Conversion.PURCHASE,
                goal="purchase",
                order_id=order_id,
                revenue=amount,
                currency=currency.strip().upper(),
                items=lines,
                is_control=visitor.in_control_group,
                exposure_id=_last_clicked_exposure(visitor.id, at),
                created_at=at,
            )
            if app_settings.RECORD_PRODUCT_INTERACTIONS and lines:
                _purchases_of(visitor, lines, conversion.created_at)
            # Counted in the row with the conversion, or not at all: exactly once per order,
            # whatever the cache does and whatever another request of the visitor saves.
            first_order = storage.credit_order(visitor, amount, at)
    except IntegrityError:
        return Conversion.objects.filter(order_id=order_id).first()
    _order_into_profile(visitor, lines, order_id, first_order)
    return conversion


def _last_clicked_exposure(visitor_id: str, at: dt.datetime) -> Any:
    """The personalized content the visitor clicked last, within ATTRIBUTION_WINDOW_DAYS
    before ``at``: what an order placed at ``at`` is credited to in ``Conversion.exposure``.
    Like the report, only a click strictly before the order counts. One query."""
    from .models import Event

    since = at - dt.timedelta(days=float(app_settings.ATTRIBUTION_WINDOW_DAYS))
    return (
        Event.objects.filter(
            visitor_id=visitor_id,
            kind=Event.CLICK,
            created_at__gte=since,
            created_at__lt=at,
            exposure__isnull=False,
        )
        .order_by("-created_at")
        .values_list("exposure_id", flat=True)
        .first()
    )


def _purchases_of(visitor: VisitorProfile, lines: list[list[Any]], at: Any) -> None:
    from .models import ProductInteraction

    country = country_of(visitor)
    ProductInteraction.objects.bulk_create(
        [
            ProductInteraction(
                visitor_id=visitor.id,
                country=country,
                product_id=str(product)[:64],
                kind=ProductInteraction.PURCHASE,
                quantity=max(1, min(int(quantity), 1_000_000)),
                created_at=at,
            )
            for product, quantity, _price in lines
        ]
    )


def _order_into_profile(
    visitor: VisitorProfile, lines: list[list[Any]], order_id: str, first_order: bool
) -> None:
    """The bought products into the profile (the row's totals are there already); a first
    order of a referred visitor rewards the referring customer."""
    data = visitor._data
    bought = [str(line[0]) for line in lines]
    data.purchased = list(dict.fromkeys([*bought, *data.purchased]))[:200]
    visitor.dirty = True
    if first_order and data.referred_by:
        try:
            from .referrals import reward_referrer

            reward_referrer(data.referred_by, visitor.id, order_id)
        except Exception:
            logger.exception("personalization: could not reward the referring customer")
