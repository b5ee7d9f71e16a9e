"""System checks for setup mistakes; every id is in CHECKS below and in docs/checks.md."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.urls import get_resolver
from django.utils.module_loading import import_string

from .conf import DEFAULTS, app_settings

MIDDLEWARE_PATH = "personalization.middleware.VisitorMiddleware"
SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"

CHECKS = {
    "personalization.E001": "PRODUCT_MODEL is not set",
    "personalization.E002": "PRODUCT_MODEL does not name an installed model",
    "personalization.E003": "a dotted path setting cannot be imported",
    "personalization.E004": "VisitorMiddleware is placed before session or auth middleware",
    "personalization.E005": "a setting has a wrong value",
    "personalization.W001": "VisitorMiddleware is not installed",
    "personalization.W002": "the GeoIP database cannot be used",
    "personalization.W003": "a PRODUCT_VIEW_URLS entry cannot be used",
    "personalization.W004": "unknown PERSONALIZATION key",
    "personalization.W005": "the profile cache cannot keep profiles",
    "personalization.W006": "the default product adapter finds no price, category or image",
    "personalization.W007": "the profile cache is not shared between processes",
    "personalization.W008": "GEO_HEADERS cannot be used",
    "personalization.W009": "PREVIEW_PERMISSION does not name a permission",
}

JOBS_FALLBACKS = ("thread", "inline", "defer")
# What the default adapter reads -> (its method, how the model must offer it).
_DEFAULT_ADAPTER_READS = {
    "price": ("price", "attribute"),
    "category": ("category_key", "field"),
    "image": ("image_url", "attribute"),
}
_PER_PROCESS_CACHES = ("LocMemCache", "DummyCache")

# name -> (type or types, minimum, maximum)
_NUMBERS: dict[str, tuple[float, float | None]] = {
    "TRUSTED_PROXY_COUNT": (0, 32),
    "CONTROL_GROUP_PERCENT": (0, 100),
    "ATTRIBUTION_WINDOW_DAYS": (0, None),
    "VISIT_TIMEOUT_MINUTES": (1, None),
    "COOKIE_AGE_DAYS": (1, None),
    "PROFILE_CACHE_DAYS": (1, None),
    "RECENTLY_VIEWED_MAX": (1, 500),
    "CATEGORY_INTEREST_MAX": (1, 500),
    "INTEREST_HALF_LIFE_DAYS": (0, None),
    "VISITOR_RETENTION_DAYS": (0, None),
    "REPORT_MAX_DAYS": (1, None),
    "REPORT_TIMEOUT_SECONDS": (0, None),
    "REPORT_RAW_MAX_EXPOSURES": (0, None),
    "REPORT_MIN_VISITORS": (0, None),
    "REPORT_MIN_CONVERSIONS": (0, None),
    "GEOIP_CHECK_SECONDS": (0, None),
    "CACHE_FAILURE_COOLDOWN": (0, None),
    "VIEW_WRITE_DELAY_SECONDS": (0, 60),
    "EMAIL_DUE_DAYS": (1, 60),
    "EMAIL_MAX_PER_WEEK": (0, 100),
    "EMAIL_SUNSET_AFTER": (0, 1000),
    "PREVIEW_AGE_HOURS": (0.1, 720),
}
# Fractions the report's planned sample is computed from: name -> (low, high), both exclusive.
_FRACTIONS: dict[str, tuple[float, float | None]] = {
    "REPORT_MDE": (0, None),
    "REPORT_POWER": (0, 1),
    "REPORT_BASELINE_RATE": (0, 1),
}


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    errors: list[Any] = []
    raw = getattr(settings, "PERSONALIZATION", None)
    if raw is not None and not isinstance(raw, dict):
        return [
            Error(
                "PERSONALIZATION must be a dict.",
                hint="See docs/settings.md for the keys and their defaults.",
                id="personalization.E005",
            )
        ]
    for key in sorted(set(app_settings.user_settings) - set(DEFAULTS)):
        errors.append(
            Warning(
                f"PERSONALIZATION has an unknown key {key!r}; it is ignored.",
                hint="Check the spelling against the settings in docs/settings.md.",
                id="personalization.W004",
            )
        )
    for name, (low, high) in _NUMBERS.items():
        value = app_settings.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            ok = False
        else:
            ok = value >= low and (high is None or value <= high)
        if not ok:
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            errors.append(
                Error(
                    f"PERSONALIZATION[{name!r}] must be a number {bounds}; got {value!r}.",
                    id="personalization.E005",
                )
            )
    for name, (low, high) in _FRACTIONS.items():
        value = app_settings.get(name)
        if value is None and name == "REPORT_BASELINE_RATE":
            continue  # the pooled rate of both groups
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and value > low and (high is None or value < high)
        if not ok:
            bounds = f"above {low}" + (f" and below {high}" if high is not None else "")
            errors.append(
                Error(
                    f"PERSONALIZATION[{name!r}] must be a number {bounds}; got {value!r}.",
                    hint="It sets the sample the report plans for before giving a verdict.",
                    id="personalization.E005",
                )
            )
    fallback = app_settings.JOBS_FALLBACK
    if fallback not in JOBS_FALLBACKS:
        errors.append(
            Error(
                f"PERSONALIZATION['JOBS_FALLBACK'] must be one of "
                f"{', '.join(map(repr, JOBS_FALLBACKS))}; got {fallback!r}.",
                hint="It says how queued work runs when no Celery broker takes it.",
                id="personalization.E005",
            )
        )
    if not isinstance(app_settings.PRODUCT_VIEW_URLS, dict):
        errors.append(
            Error(
                "PERSONALIZATION['PRODUCT_VIEW_URLS'] must be a dict of URL name -> kwarg.",
                id="personalization.E005",
            )
        )
    return errors


@register(Tags.models)
def check_product_model(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    from .products import get_product_model

    if not app_settings.PRODUCT_MODEL:
        return [
            Error(
                "PERSONALIZATION['PRODUCT_MODEL'] is not set.",
                hint='Name the shop\'s product model, e.g. "catalog.Product".',
                id="personalization.E001",
            )
        ]
    try:
        model = get_product_model()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="personalization.E002")]
    errors: list[Any] = []
    for setting in ("PRODUCT_ADAPTER", "REFERRAL_CODE_VALIDATOR"):
        path = app_settings.get(setting)
        if not path:
            continue
        try:
            import_string(path)
        except ImportError as exc:
            errors.append(
                Error(
                    f"PERSONALIZATION[{setting!r}] = {path!r} cannot be imported: {exc}",
                    id="personalization.E003",
                )
            )
    errors.extend(_default_adapter_problems(model))
    urls = app_settings.PRODUCT_VIEW_URLS
    if isinstance(urls, dict):
        for url_name, field in urls.items():
            try:
                if field != "pk":  # the primary key, whatever its field is named
                    model._meta.get_field(field)
            except (FieldDoesNotExist, TypeError):
                errors.append(
                    Warning(
                        f"PRODUCT_VIEW_URLS[{url_name!r}] looks products up by {field!r}, "
                        f"which is not a field of {model._meta.label}.",
                        id="personalization.W003",
                    )
                )
            if not _url_name_exists(str(url_name)):
                errors.append(
                    Warning(
                        f"PRODUCT_VIEW_URLS names the URL {url_name!r}, which the URLconf "
                        "does not define; views of it will not be recorded.",
                        hint="Use the namespaced URL name, e.g. 'catalog:product-detail'.",
                        id="personalization.W003",
                    )
                )
    return errors


def _default_adapter_problems(model: Any) -> list[Any]:
    """W006: what the default adapter would read from the product model and cannot."""
    from .products import DefaultProductAdapter

    try:
        adapter_class = import_string(app_settings.PRODUCT_ADAPTER)
    except (ImportError, TypeError):
        return []  # E003
    if not (isinstance(adapter_class, type) and issubclass(adapter_class, DefaultProductAdapter)):
        return []
    missing = []
    for name, (method, kind) in _DEFAULT_ADAPTER_READS.items():
        if getattr(adapter_class, method) is not getattr(DefaultProductAdapter, method):
            continue  # the shop's adapter reads it its own way
        if kind == "field":
            try:
                model._meta.get_field(name)
                continue
            except FieldDoesNotExist:
                pass
        elif hasattr(model, name):
            continue
        missing.append(name)
    if not missing:
        return []
    words = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} or {missing[-1]}"
    return [
        Warning(
            f"{model._meta.label} has no {words} for {adapter_class.__name__} to read: "
            f"recommendations, product cards and emails show no {words}"
            + (", and no visitor gets category interests." if "category" in missing else "."),
            hint="Write a product adapter that reads them from the shop's model (subclass "
            "personalization.products.DefaultProductAdapter, override "
            + ", ".join(f"{_DEFAULT_ADAPTER_READS[name][0]}()" for name in missing)
            + ") and name it in PERSONALIZATION['PRODUCT_ADAPTER'].",
            id="personalization.W006",
        )
    ]


def _url_name_exists(view_name: str) -> bool:
    *namespaces, name = view_name.split(":")
    try:
        resolver = get_resolver()
        for namespace in namespaces:
            resolver = resolver.namespace_dict[namespace][1]
        return name in resolver.reverse_dict
    except Exception:
        return False


@register(Tags.compatibility)
def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if MIDDLEWARE_PATH not in middleware:
        return [
            Warning(
                f"{MIDDLEWARE_PATH} is not in MIDDLEWARE, so no visitor is profiled.",
                hint="Add it after AuthenticationMiddleware.",
                id="personalization.W001",
            )
        ]
    position = middleware.index(MIDDLEWARE_PATH)
    for required in (SESSION_MIDDLEWARE, AUTH_MIDDLEWARE):
        if required in middleware and middleware.index(required) > position:
            return [
                Error(
                    f"{MIDDLEWARE_PATH} must come after {required}.",
                    hint="Logged-in visitors are linked to their profile through it.",
                    id="personalization.E004",
                )
            ]
    return []


@register(Tags.compatibility)
def check_geoip(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    from .profiling.geo import database_problem

    path = app_settings.GEOIP_PATH
    if not path:
        return []
    problem = database_problem(path)
    if problem is None:
        return []
    return [
        Warning(
            f"GEOIP_PATH {str(path)!r}: {problem.rstrip('.')}. Visitors will have no location.",
            hint="Point it at a GeoLite2/GeoIP2 City or Country .mmdb file.",
            id="personalization.W002",
        )
    ]


@register(Tags.compatibility)
def check_geo_headers(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    from .profiling.geo import geo_headers_problem

    problem = geo_headers_problem(app_settings.GEO_HEADERS)
    if problem is None:
        return []
    return [
        Warning(
            f"PERSONALIZATION['GEO_HEADERS'] cannot be used: {problem} The CDN's location "
            "headers are ignored; visitors are located by GeoIP alone.",
            hint='Use None, "cloudflare", "cloudfront", "fastly", "generic" or a dict such as '
            '{"country_code": "X-Country-Code", "city": "X-City"}.',
            id="personalization.W008",
        )
    ]


@register(Tags.compatibility)
def check_preview_permission(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    value = app_settings.PREVIEW_PERMISSION
    if value is None:
        return []
    label, _, codename = value.partition(".") if isinstance(value, str) else ("", "", "")
    if label and codename and "." not in codename:
        return []
    return [
        Warning(
            f"PERSONALIZATION['PREVIEW_PERMISSION'] = {value!r} is not a permission name of "
            'the form "app_label.codename"; no staff member can preview the site.',
            hint='E.g. "personalization.view_banner"; None lets any active staff member.',
            id="personalization.W009",
        )
    ]


@register(Tags.caches)
def check_cache(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    alias = app_settings.CACHE_ALIAS
    caches_setting = getattr(settings, "CACHES", {}) or {}
    if alias not in caches_setting:
        return [
            Warning(
                f"PERSONALIZATION['CACHE_ALIAS'] = {alias!r} is not in CACHES.",
                id="personalization.W005",
            )
        ]
    backend = str(caches_setting[alias].get("BACKEND", ""))
    errors: list[Any] = []
    if backend.endswith("DummyCache"):
        errors.append(
            Warning(
                f"The cache {alias!r} is a DummyCache: profiles are re-read from the database "
                "on every request.",
                hint="Use Redis or Memcached (the local-memory cache, while developing).",
                id="personalization.W005",
            )
        )
    kind = backend.rsplit(".", 1)[-1]
    if kind in _PER_PROCESS_CACHES and not settings.DEBUG:
        errors.append(
            Warning(
                f"The cache {alias!r} (PERSONALIZATION['CACHE_ALIAS']) is a {kind}, which no "
                "two processes share: with several processes (web server workers, a Celery "
                "worker) each keeps its own copy of a visitor's profile and of the app's hot "
                "state, so what a visitor sees depends on the process that answers, and the "
                "views and interests one process records are missing in the others.",
                hint="Use a cache every process shares (Redis, Memcached) in production; a "
                "shop served by a single process may silence this in SILENCED_SYSTEM_CHECKS.",
                id="personalization.W007",
            )
        )
    return errors
