"""VisitorMiddleware: attaches request.visitor, counts visits, records views, saves once."""

from __future__ import annotations

import logging
import time
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.functional import empty
from django.utils.module_loading import import_string

from . import deferred, fragments, holding, preview, products, resilience, tracking
from .conf import app_settings
from .profiling import storage
from .profiling.bots import is_bot
from .profiling.devices import device_class, warm_up
from .profiling.referrer import Referrer, classify_request
from .profiling.visitor import ProfileData, VisitorProfile, new_visitor_id

logger = logging.getLogger("personalization")


def _referral_validator() -> Any:
    path = app_settings.REFERRAL_CODE_VALIDATOR
    return import_string(path) if path else None


def opted_out(request: HttpRequest) -> bool:
    """DNT: 1 or Sec-GPC: 1, when the shop respects them (the default)."""
    if not app_settings.RESPECT_DO_NOT_TRACK:
        return False
    meta = request.META
    return bool(
        meta.get("HTTP_DNT", "").strip() == "1" or meta.get("HTTP_SEC_GPC", "").strip() == "1"
    )


class VisitorMiddleware:
    """Profiles every request. One class for sync and async stacks; the work is shared."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        warm_up()  # the device rules, loaded as the process starts rather than in a request
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        self.process_request(request)
        with preview.overlay(request):  # what a staff preview forces, for this request only
            response = self.get_response(request)
        return self.process_response(request, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        # An async view cannot read the profile lazily (a cache miss reads the database), so
        # async stacks read it before the view, in the thread the database calls run in.
        await sync_to_async(self.process_request_eagerly, thread_sensitive=True)(request)
        with preview.overlay(request):
            response = await self.get_response(request)
        return await sync_to_async(self.process_response, thread_sensitive=True)(request, response)

    # Request --------------------------------------------------------------------------
    def process_request(self, request: HttpRequest) -> None:
        now = time.time()
        fragments.attach_page(request)
        try:
            # Staff previewing the site get a visitor of their own, never stored.
            visitor = preview.visitor_for(request, now) or self.build_visitor(request, now)
            request.visitor = visitor  # type: ignore[attr-defined]
        except Exception:
            logger.exception("personalization: could not load the visitor profile; using defaults")
            request.visitor = anonymous_visitor(request, now, degraded=True)  # type: ignore[attr-defined]

    def process_request_eagerly(self, request: HttpRequest) -> None:
        self.process_request(request)
        request.visitor._data  # type: ignore[attr-defined]  # noqa: B018

    def build_visitor(self, request: HttpRequest, now: float) -> VisitorProfile:
        bot = is_bot(request.META.get("HTTP_USER_AGENT"))
        if bot or opted_out(request):
            return anonymous_visitor(request, now, is_bot=bot, opted_out=not bot)

        cookie = storage.read_visitor_cookie(request)
        if cookie is None:
            return new_visitor(request, now, None)
        idle = now - cookie.signed_at
        # A page that may be cached whole is profiled by its fragment request: nothing is
        # read before the view (the view may read the profile, lazily, all the same).
        shared = fragments.enabled() and not fragments.is_fragment_request(request)
        if not shared and (cookie.unwritten or idle > app_settings.visit_timeout_seconds):
            # Once a visit: a new visit, or the second request of a new visitor (its row and
            # the rows held for it are written now). The profile is read and saved.
            visitor = VisitorProfile(
                None, request=request, now=now, visitor_id=cookie.id, loader=load_profile
            )
            visitor.cookie = cookie
            visitor._data  # noqa: B018  (loaded now, before the view)
            return visitor
        # Within a visit: nothing is read until something asks for the profile.
        visitor = VisitorProfile(
            None, request=request, now=now, visitor_id=cookie.id, loader=load_profile
        )
        visitor.cookie = cookie
        visitor.cookie_needed = idle >= storage.TOUCH_SECONDS
        return visitor

    # Response -------------------------------------------------------------------------
    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        visitor = getattr(request, "visitor", None)
        if not isinstance(visitor, VisitorProfile):
            return response
        if preview.handle_response(request, response):
            return response  # a staff preview: nothing is recorded or saved
        page = fragments.page_match(request)
        shared = fragments.enabled() and not fragments.is_fragment_request(request)
        if shared and not visitor.accessed:
            # A page cached whole (PAGE_CACHE): it read nothing of the visitor, so it may be
            # shared; its fragment request records the view and the visit.
            return response
        try:
            if visitor.is_tracked:
                self.record_product_page(request, response, visitor, page)
                self.link_logged_in_user(request, visitor)
                self.flush_exposures(request)
                self.save(visitor, response)
            elif visitor.opted_out and app_settings.COOKIE_NAME in request.COOKIES:
                storage.delete_visitor_cookie(response)
        except Exception:
            logger.exception("personalization: could not save the visitor profile")
        if visitor.is_tracked and (visitor.is_loaded or visitor.cookie_needed):
            # Also when saving failed: the next request then finds the row or starts afresh,
            # under the same id. (A profile not read: the cookie says the same as it did.)
            value = visitor_cookie_value(visitor)
            if visitor.cookie_needed or value != visitor_cookie_value(visitor, sent=True):
                storage.write_visitor_cookie(response, value)
                # One visitor's cookie: a shared cache must never hand it to another.
                patch_cache_control(response, private=True)
                patch_vary_headers(response, ("Cookie",))
        if visitor.accessed:
            patch_vary_headers(response, ("Cookie",))
        return response

    def record_product_page(
        self,
        request: HttpRequest,
        response: HttpResponseBase,
        visitor: VisitorProfile,
        page: Any = None,
    ) -> None:
        """Record the view of a product page (``page``: the resolved page a fragment request
        fills, else this request's own view)."""
        match = page or getattr(request, "resolver_match", None)
        if match is None or not 200 <= response.status_code < 300:
            return
        urls = app_settings.PRODUCT_VIEW_URLS or {}
        if match.view_name not in urls:
            return
        field = urls[match.view_name]
        value = match.kwargs.get(field)
        if value is None:
            return
        if not visitor.is_loaded and deferred.defer_view(
            visitor.id, field, value, visitor._now, tracking.country_of(visitor)
        ):
            return  # added to the profile, and logged, after the response
        try:
            info = product_info(field, value)
        except Exception:
            logger.exception("personalization: could not look up the viewed product")
            return
        if info is not None and visitor.record_product_view(*info):
            tracking.queue_interaction(request, info[0])

    def link_logged_in_user(self, request: HttpRequest, visitor: VisitorProfile) -> None:
        """Link a user the view already loaded; never loads the user (that would cost queries)."""
        user = request.__dict__.get("user")
        wrapped = getattr(user, "_wrapped", user)
        if wrapped is empty or wrapped is None or not getattr(wrapped, "is_authenticated", False):
            return
        cookie = visitor.cookie
        linked = cookie is not None and cookie.user_hash == storage.user_hash(wrapped.pk)
        if linked and not visitor.is_loaded:
            return  # linked already, as the cookie says: nothing to read
        if visitor.user_id != wrapped.pk:
            storage.attach_user(visitor, wrapped)

    def flush_exposures(self, request: HttpRequest) -> None:
        """Write the page's exposures; losing them must not lose the profile too."""
        try:
            tracking.flush_exposures(request)
        except Exception:
            logger.exception("personalization: could not write this page's exposures")

    def save(self, visitor: VisitorProfile, response: HttpResponseBase) -> None:
        storage.save(visitor)


def new_visitor(request: HttpRequest, now: float, visitor_id: str | None) -> VisitorProfile:
    """A visitor whose profile is not stored: a first request (no cookie), or a returning id
    whose profile was lost (purged, or forgotten), which is written at once."""
    data = ProfileData.new(
        visitor_id or new_visitor_id(),
        now,
        classify_request(fragments.page_of(request), _referral_validator()),
    )
    visitor = VisitorProfile(data, request=request, now=now)
    start_visit(request, data)
    visitor.new_visit = visitor.cookie_needed = visitor.dirty = True
    # The row waits for the cookie to come back, so cookieless clients cost no writes.
    visitor.db_write_needed = visitor_id is not None
    # Nor anything else: the request's rows are held until the cookie comes back.
    visitor.cookieless = visitor_id is None
    return visitor


def load_profile(visitor: VisitorProfile) -> ProfileData:
    """Read the stored profile of a visitor who came with the cookie (when first needed), and
    count a new visit when the cookie says the last request was a visit's length ago."""
    request, now, cookie = visitor._request, visitor._now, visitor.cookie
    loaded = storage.load_stored(visitor.id)
    if loaded is None:
        fresh = new_visitor(request, now, visitor.id)  # type: ignore[arg-type]
        for name in ("new_visit", "cookie_needed", "dirty", "db_write_needed"):
            setattr(visitor, name, getattr(fresh, name))
        return fresh._data
    data = loaded.data
    visitor.revision = loaded.revision
    # What this request changes is told apart from the copy as loaded (a concurrent save
    # gets the changes replayed onto it): the visit counted below is such a change.
    visitor._base = data.copy()
    if loaded.base is not None:  # joined with its row after an outage: save the join
        visitor._base = loaded.base
        visitor.dirty = True
    idle = now - cookie.signed_at if cookie is not None else 0.0
    if idle > app_settings.visit_timeout_seconds:
        data.visit_count += 1
        data.visit_started = now
        data.referrer = classify_request(fragments.page_of(request), _referral_validator())  # type: ignore[arg-type]
        start_visit(request, data)  # type: ignore[arg-type]
        visitor.new_visit = visitor.cookie_needed = visitor.db_write_needed = True
        visitor.dirty = True
    elif not data.persisted:
        visitor.db_write_needed = visitor.dirty = True  # the cookie came back: write the row
    data.last_seen = now
    visitor._profile = data  # what follows reads and changes it
    if data.held:
        release_held(visitor)
    add_waiting_views(visitor)
    return data


def add_waiting_views(visitor: VisitorProfile) -> None:
    """Add the product views this process has not yet added to the visitor's profile."""
    for view in deferred.take_views(visitor.id):
        try:
            info: tuple[Any, Any] | None = view.known or product_info(view.field, view.value)
        except Exception:
            logger.exception("personalization: could not look up the viewed product")
            continue
        if info is not None:
            visitor.record_view_at(*info, view.at)


def visitor_cookie_value(visitor: VisitorProfile, *, sent: bool = False) -> str:
    """The cookie's value for this visitor now, or (``sent``) as the request brought it."""
    cookie = visitor.cookie
    if sent:
        if cookie is None:
            return ""
        return storage.cookie_value(cookie.id, unwritten=cookie.unwritten, user=cookie.user_hash)
    if not visitor.is_loaded:
        if cookie is None:
            return visitor.id
        return storage.cookie_value(visitor.id, user=cookie.user_hash)
    data = visitor._data
    return storage.cookie_value(
        data.id, unwritten=not data.persisted, user=storage.user_hash(data.user_id)
    )


def release_held(visitor: VisitorProfile) -> None:
    """The cookie came back: write what the visitor's earlier requests held, before the view
    runs (a click on the landing page's content names an exposure held until now)."""
    try:
        tracking.write_rows(holding.by_model(holding.release(visitor)))
    except Exception:
        logger.exception("personalization: could not write the rows held for a visitor")


def product_info(field: str, value: Any) -> tuple[Any, str | None] | None:
    """(pk, category key) of the viewed product: cached, or from the database while the
    cache is being skipped after a failure (a product page must not wait for it)."""
    if resilience.cache().available:
        return products.view_info(field, value)
    adapter = products.get_adapter()
    product = adapter.get_by_field(field, value)
    return (adapter.pk(product), adapter.category_key(product)) if product is not None else None


def start_visit(request: HttpRequest, data: ProfileData) -> None:
    """What is worked out once per visit: the device, and a referral the visitor came by."""
    data.device = device_class(request.META)
    if data.referrer.referral_code and not data.referred_by:
        data.referred_by = data.referrer.referral_code


def anonymous_visitor(
    request: HttpRequest,
    now: float,
    *,
    is_bot: bool = False,
    opted_out: bool = False,
    degraded: bool = False,
) -> VisitorProfile:
    """A profile that is never stored: for bots, opted-out visitors and failures."""
    try:
        referrer = classify_request(fragments.page_of(request))
    except Exception:
        referrer = Referrer()
    data = ProfileData.new("anon-" + new_visitor_id(), now, referrer)
    return VisitorProfile(
        data, request=request, now=now, is_bot=is_bot, opted_out=opted_out, degraded=degraded
    )
