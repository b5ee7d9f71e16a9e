"""The PERSONALIZATION settings: merged with defaults once, refreshed on every settings change
(``override_settings`` and ``settings`` fixtures send ``setting_changed``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # app_label.ModelName of the shop's product model; the only required key.
    "PRODUCT_MODEL": None,
    # Dotted path of the class that reads the shop's products.
    "PRODUCT_ADAPTER": "personalization.products.DefaultProductAdapter",
    # URL name -> URL kwarg whose value is looked up on the product model field of that name.
    "PRODUCT_VIEW_URLS": {},
    # Path to a GeoIP2/GeoLite2 City or Country database; None disables geolocation.
    "GEOIP_PATH": None,
    # How often, at most, a process looks whether that file was replaced, and reads it again.
    "GEOIP_CHECK_SECONDS": 5,
    # How many X-Forwarded-For hops to trust; 0 uses REMOTE_ADDR.
    "TRUSTED_PROXY_COUNT": 0,
    # The location headers of the CDN in front of the site, read before GeoIP: a preset
    # ("cloudflare", "cloudfront", "fastly", "generic") or {Geo field: header name}. None
    # (off): any client can send such headers, so only a site every request of which comes
    # through that CDN may trust them.
    "GEO_HEADERS": None,
    # Share of visitors (0-100) held out to see the non-personalized default.
    "CONTROL_GROUP_PERCENT": 10,
    # Salt of the control-group hash; change it to reshuffle the holdout.
    "CONTROL_GROUP_SALT": "personalization-holdout",
    "ATTRIBUTION_WINDOW_DAYS": 7,
    # A new visit starts after this much inactivity.
    "VISIT_TIMEOUT_MINUTES": 30,
    # Honour DNT: 1 and Sec-GPC: 1 with an anonymous, non-persisted profile.
    "RESPECT_DO_NOT_TRACK": True,
    # Pages are cached whole (Django's cache middleware, a reverse proxy, a CDN): the tags
    # render placeholders that the page script fills from the fragments endpoint.
    "PAGE_CACHE": False,
    # The visitor-id cookie.
    "COOKIE_NAME": "pzn_vid",
    "COOKIE_AGE_DAYS": 365,
    "COOKIE_SECURE": None,  # None follows SESSION_COOKIE_SECURE
    "COOKIE_DOMAIN": None,
    # Django cache alias that holds hot profiles, and how long an idle profile stays there.
    "CACHE_ALIAS": "default",
    "PROFILE_CACHE_DAYS": 30,
    # After a call to that cache fails (refused, timed out, any error), the app skips it for
    # this many seconds, treating it as empty, then tries one call to see whether it is back.
    "CACHE_FAILURE_COOLDOWN": 30,
    # Where that cache lives in each process (local memory, dummy) or fails: how often, at most,
    # a process reads the database to learn what other processes changed (targeting, lists),
    # and how old a product card it serves may be. Changes reach every process within this.
    "SHARED_STATE_SECONDS": 30,
    # How many recently viewed products a profile keeps.
    "RECENTLY_VIEWED_MAX": 20,
    # How many categories a profile keeps interest scores for.
    "CATEGORY_INTEREST_MAX": 20,
    # Half-life of category interest: a view this old weighs half a fresh one.
    "INTEREST_HALF_LIFE_DAYS": 7,
    # Dotted path of a callable(code) -> bool that says whether a ?ref= code is valid.
    "REFERRAL_CODE_VALIDATOR": "personalization.referrals.is_valid_code",
    # Signup popup: who sees it (a segment slug; None = first-time visitors), when, how often.
    "SIGNUP_POPUP_SEGMENT": None,
    "SIGNUP_POPUP_DELAY_SECONDS": 8,
    "SIGNUP_POPUP_EXIT_INTENT": True,
    "SIGNUP_POPUP_DISMISS_DAYS": 14,
    # The signup coupon.
    "SIGNUP_DISCOUNT_PERCENT": 10,
    "SIGNUP_COUPON_DAYS": 30,
    # DRF-style rate of signup attempts per client, e.g. "5/hour".
    "SIGNUP_THROTTLE_RATE": "5/hour",
    "EVENTS_THROTTLE_RATE": "120/minute",
    # Referral offers: the referred friend's welcome coupon and the referrer's reward.
    "REFERRAL_WELCOME_PERCENT": 10,
    "REFERRAL_REWARD_PERCENT": 15,
    "REFERRAL_COUPON_DAYS": 30,
    # How a placement picks among banners that fit when it does not say: priority or bandit.
    "BANNER_SELECTION": "priority",
    # Visitors not seen for this many days are deleted by the purge task (0 = keep forever).
    "VISITOR_RETENTION_DAYS": 395,
    # The conversion report: the longest period it covers, in days; the fewest visitors in
    # each group, and converted visitors in both groups together, before it gives a verdict.
    # On PostgreSQL, a report that runs longer than this is cancelled (a 503 with a message).
    "REPORT_TIMEOUT_SECONDS": 30,
    "REPORT_MAX_DAYS": 366,
    "REPORT_ROLLUPS": True,
    # Until the roll-ups are built, the report reads the raw rows when there are at most this
    # many exposures, and otherwise says it is being prepared.
    "REPORT_RAW_MAX_EXPOSURES": 100_000,
    "REPORT_MIN_VISITORS": 100,
    "REPORT_MIN_CONVERSIONS": 5,
    # The lift's verdict waits for the planned sample: the visitors each group needs for the
    # always-valid 95% interval to exclude "no difference" with probability REPORT_POWER when
    # the true relative lift is REPORT_MDE (0.20: +20%), at the baseline conversion rate
    # REPORT_BASELINE_RATE (a fraction; None: the pooled rate of both groups, 2% while nobody
    # has converted). A smaller MDE needs about (0.20 / MDE)² times the visitors; smaller real
    # lifts can still be declared later, the interval staying valid however long it is read.
    # REPORT_MIN_VISITORS and REPORT_MIN_CONVERSIONS remain floors under that plan, the
    # latter counting the converted visitors of both groups together: a floor on one group's
    # conversions would admit mostly the runs where that group happened to be lucky.
    "REPORT_MDE": 0.20,
    "REPORT_POWER": 0.80,
    "REPORT_BASELINE_RATE": None,
    # Recommendations: log product views, carts and purchases for the recommender; the
    # strategy of placements that do not choose one and the control group's; extra strategy
    # classes (dotted paths); the history the nightly fit reads and the trending window.
    "RECORD_PRODUCT_INTERACTIONS": True,
    # On PostgreSQL, a page's exposures and the background writer's product views are
    # committed without waiting for the disk (synchronous_commit off for that transaction
    # only): a crash of the database's machine may lose their last fraction of a second.
    "TRACKING_ASYNC_COMMIT": True,
    # Product views for the recommender are written by a background thread of each process,
    # everything of this many seconds in one statement; 0 writes them with the page.
    "VIEW_WRITE_DELAY_SECONDS": 1.0,
    "RECOMMENDATION_DEFAULT_STRATEGY": "auto",
    "RECOMMENDATION_CONTROL_STRATEGY": "bestsellers",
    "RECOMMENDATION_STRATEGIES": [],
    "RECOMMENDATION_HISTORY_DAYS": 90,
    "RECOMMENDATION_TRENDING_DAYS": 14,
    "RECOMMENDATION_MAX_LIMIT": 24,
    # The nightly fit in parts (docs/recommendations-scale.md). None: every list in one part,
    # in the process that runs the job. "auto" (a part per family of lists, the similarity
    # families in blocks of products) or a number of parts: sent to the Celery workers as a
    # chord when a Celery app with a broker and a result backend takes them, else run one
    # after another in that process. The lists are the same either way.
    "RECOMMENDATION_FIT_PARTS": None,
    # New products (first seen within 14 days, fewer than 20 visitors) gain up to this share of
    # the best candidate's score when another signal proposes them; 0 turns it off, 1 at most.
    "RECOMMENDATION_NEW_PRODUCT_BOOST": 0.25,
    # Email. The shop's address for links in emails ("https://shop.example"): no email is
    # sent without it. The sender (None: DEFAULT_FROM_EMAIL). Each flow's delay in minutes
    # (None switches it off): welcome after the signup, browse_abandonment and
    # cart_abandonment after the visit ended (VISIT_TIMEOUT_MINUTES after its last view or
    # cart addition), post_purchase after the order, winback after the last order (at least,
    # and 1.5 times the customer's usual gap between orders). A flow's trigger
    # stays due for EMAIL_DUE_DAYS; nobody gets more than EMAIL_MAX_PER_WEEK emails in 7 days
    # (a third of it for a recipient with no order or click in 90 days).
    "EMAIL_SITE_URL": None,
    "EMAIL_FROM": None,
    "EMAIL_FLOWS": {
        "welcome": 0,
        "browse_abandonment": 60,
        "cart_abandonment": 60,
        "post_purchase": 3 * 24 * 60,
        "winback": 45 * 24 * 60,
    },
    # The shop's cart page, for the cart-abandonment email's button (None: the home page).
    "EMAIL_CART_PATH": None,
    "EMAIL_DUE_DAYS": 3,
    # Double opt-in: an address gets a confirmation email first, and nothing else until its
    # link is followed.
    "EMAIL_DOUBLE_OPT_IN": False,
    "EMAIL_MAX_PER_WEEK": 3,
    # After this many emails in a row without a click, a recipient's emails are no longer
    # sent (still recorded, for the report); 0: never.
    "EMAIL_SUNSET_AFTER": 8,
    # Local hours (from, to) in which no email is sent, in the recipient's time zone (their
    # visitor's, from GeoIP; else their country's when it has one zone; else TIME_ZONE).
    # An email due then waits for the morning. None: send at any hour. The confirmation and
    # welcome emails answer the visitor's own signup and are sent at once.
    "EMAIL_QUIET_HOURS": (21, 8),
    # Count opens with a tracking pixel. Opens are unreliable (images blocked, or loaded by
    # privacy proxies for every email): the report never uses them; they only keep a
    # recipient who opens without clicking from the sunset.
    "EMAIL_TRACK_OPENS": False,
    # Work queued while no Celery app and broker take it (a segment recount after an admin
    # save, a new shop's first fit): "thread" runs it after commit in a background thread,
    # "inline" in the caller's thread, "defer" leaves it to the next personalization_jobs run.
    "JOBS_FALLBACK": "thread",
    # Staff preview (personalization/preview/): who may preview besides being active staff
    # (a permission "app_label.codename"; None: any staff member), and how long a preview
    # lasts before it ends by itself.
    "PREVIEW_PERMISSION": "personalization.view_banner",
    "PREVIEW_AGE_HOURS": 8,
}


class PersonalizationSettings:
    """Typed, live view over ``settings.PERSONALIZATION`` merged onto :data:`DEFAULTS`."""

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "PERSONALIZATION", None)
        return value if isinstance(value, dict) else {}

    def get(self, name: str) -> Any:
        try:
            return _merged()[name]
        except KeyError:
            raise AttributeError(f"Unknown personalization setting {name!r}") from None

    def __getattr__(self, name: str) -> Any:
        if name.isupper():
            return self.get(name)
        raise AttributeError(name)

    # Typed accessors for values used on the request path.
    @property
    def visit_timeout_seconds(self) -> float:
        return float(self.get("VISIT_TIMEOUT_MINUTES")) * 60.0

    @property
    def cookie_max_age(self) -> int:
        return int(self.get("COOKIE_AGE_DAYS")) * 86400

    @property
    def cookie_secure(self) -> bool:
        value = self.get("COOKIE_SECURE")
        return bool(settings.SESSION_COOKIE_SECURE if value is None else value)

    @property
    def profile_cache_seconds(self) -> int:
        return int(self.get("PROFILE_CACHE_DAYS")) * 86400

    @property
    def interest_half_life_seconds(self) -> float:
        return float(self.get("INTEREST_HALF_LIFE_DAYS")) * 86400.0


app_settings = PersonalizationSettings()

_on_change: list[Callable[[], None]] = []


_Cached = TypeVar("_Cached", bound="functools._lru_cache_wrapper[Any]")


def cached_on_settings(func: _Cached) -> _Cached:
    """Register an ``lru_cache``-wrapped function to be cleared when the settings change."""
    _on_change.append(func.cache_clear)
    return func


def on_settings_change(func: Callable[[], None]) -> Callable[[], None]:
    """Register a function that drops derived state when the settings change."""
    _on_change.append(func)
    return func


@cached_on_settings
@functools.lru_cache(maxsize=1)
def _merged() -> dict[str, Any]:
    """DEFAULTS overlaid with the shop's values; rebuilt whenever the settings change."""
    return {**DEFAULTS, **{k: v for k, v in app_settings.user_settings.items() if k in DEFAULTS}}


@receiver(setting_changed)
def _clear_caches(*, setting: str, **kwargs: Any) -> None:
    if setting in {"PERSONALIZATION", "CACHES", "SECRET_KEY", "MIDDLEWARE"}:
        for func in _on_change:
            func()
