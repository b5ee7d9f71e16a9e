"""Customer referrals: personal ``?ref=`` codes, the referred friend's welcome offer and the
referrer's reward after the friend's first order."""

from __future__ import annotations

import logging
import re
import secrets
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from . import coupons, resilience
from .conf import app_settings
from .models import Conversion, Coupon, ReferralCode, Signup, Visitor
from .products import get_adapter
from .profiling import storage

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .profiling.visitor import VisitorProfile

logger = logging.getLogger("personalization")

CODE_ALPHABET = coupons.ALPHABET
CODE_LENGTH = 8  # 40 random bits: unguessable enough for a code that is meant to be shared
VALIDITY_CACHE_SECONDS = 300
WELCOME_LOCK_SECONDS = 10
_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


# Codes ----------------------------------------------------------------------------------
def generate_code() -> str:
    """A fresh code such as ``7KQ4M9XR``, from the coupons' alphabet without look-alikes."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def code_for_user(user: Any) -> ReferralCode:
    """The customer's referral code, created on first use."""
    existing = ReferralCode.objects.filter(user_id=user.pk).first()
    return existing or _create_code(user_id=user.pk)


def code_for_signup(signup: Signup) -> ReferralCode:
    """The referral code of a signed-up visitor (their account's code if they have one)."""
    existing = ReferralCode.objects.filter(signup=signup).first()
    if existing is None and signup.user_id is not None:
        existing = ReferralCode.objects.filter(user_id=signup.user_id).first()
    return existing or _create_code(signup=signup, user_id=signup.user_id)


def _create_code(**owner: Any) -> ReferralCode:
    """Create a code for the owner; a concurrent request that created one first wins."""
    try:
        return coupons.save_with_fresh_code(ReferralCode(**owner), generate_code)
    except IntegrityError:
        lookup = (
            {"signup": owner["signup"]} if owner.get("signup") else {"user_id": owner["user_id"]}
        )
        winner = ReferralCode.objects.filter(**lookup).first()
        if winner is None:
            raise
        return winner


def referral_link(request: HttpRequest, code: ReferralCode | str) -> str:
    """The absolute URL a customer shares: the shop's home page with ``?ref=CODE``."""
    return request.build_absolute_uri(f"/?ref={code}")


# Validity (asked by the middleware on every landing with ?ref=) ----------------------------
def _validity_key(code: str) -> str:
    return f"pzn:v1:referral:{code}"


def _cache() -> Any:
    return resilience.cache()


def is_valid_code(code: str) -> bool:
    """Whether ``?ref=code`` names an active, unexpired referral code (cached 5 minutes)."""
    if not isinstance(code, str) or not _CODE_RE.fullmatch(code):
        return False
    key = _validity_key(code)
    cached = _cache().get(key)
    if cached is not None:
        return bool(cached)
    row = ReferralCode.objects.filter(code=code).first()
    valid = row is not None and row.is_valid()
    timeout = VALIDITY_CACHE_SECONDS
    if valid and row is not None and row.expires_at is not None:
        timeout = max(1, min(timeout, int((row.expires_at - timezone.now()).total_seconds())))
    _cache().set(key, valid, timeout)
    return valid


def forget_codes(codes: list[str]) -> None:
    """Drop the cached validity of these codes (after a change that sends no signals)."""
    _cache().delete_many([_validity_key(code) for code in codes])


def forget_code(sender: Any, instance: ReferralCode, **kwargs: Any) -> None:
    """Receiver: drop the cached validity of a code that was saved or deleted."""
    try:
        forget_codes([instance.code])
    except Exception:
        logger.warning("personalization: could not clear a cached referral code", exc_info=True)


def connect_receivers() -> None:
    """Keep :func:`is_valid_code`'s cache in step with the codes; called from ``ready()``."""
    post_save.connect(forget_code, sender=ReferralCode, dispatch_uid="pzn.referral_code_saved")
    post_delete.connect(forget_code, sender=ReferralCode, dispatch_uid="pzn.referral_code_deleted")


def _usable_code(code: str | None) -> ReferralCode | None:
    if not isinstance(code, str) or not _CODE_RE.fullmatch(code):
        return None
    row = ReferralCode.objects.select_related("signup", "user").filter(code=code).first()
    return row if row is not None and row.is_valid() else None


def _referrer_visitor_id(code: ReferralCode) -> str | None:
    """The referring customer's visitor: the one linked to the code's user, else the visitor
    who signed up for it."""
    if code.user_id is not None:
        linked: str | None = (
            Visitor.objects.filter(user_id=code.user_id).values_list("pk", flat=True).first()
        )
        if linked is not None:
            return linked
    return code.signup.visitor_id if code.signup is not None else None


def _is_referrer(code: ReferralCode, request: HttpRequest, visitor: VisitorProfile) -> bool:
    """Whether the visitor is the code's owner: by account (profile or session), or by the
    visitor who signed up for it."""
    user = getattr(request, "user", None)
    user_ids = {visitor.user_id, user.pk if user is not None and user.is_authenticated else None}
    if code.user_id is not None and code.user_id in user_ids:
        return True
    return _referrer_visitor_id(code) == visitor.id


# The referred friend's welcome offer ------------------------------------------------------
def welcome_offer(request: HttpRequest) -> Coupon | None:
    """The welcome coupon of a visitor who came through a valid referral link: created on the
    first call, the same one after. None for untracked visitors and the referrer themself."""
    visitor = getattr(request, "visitor", None)
    if visitor is None or not visitor.is_tracked or getattr(visitor, "is_preview", False):
        return None
    if not visitor._data.referred_by:
        return None
    existing = _welcome_coupon(visitor.id)
    if existing is not None:
        return existing
    code = _usable_code(visitor._data.referred_by)
    if code is None or _is_referrer(code, request, visitor):
        return None
    # Two requests of one page may ask at once; only the one holding the lock issues.
    if not _cache().add(f"pzn:v1:welcome-lock:{visitor.id}", 1, WELCOME_LOCK_SECONDS):
        return _welcome_coupon(visitor.id)
    return coupons.issue(
        source=Coupon.SOURCE_REFERRAL_WELCOME,
        value=app_settings.REFERRAL_WELCOME_PERCENT,
        visitor_id=visitor.id,
        days=app_settings.REFERRAL_COUPON_DAYS,
        referral=code,
    )


def _welcome_coupon(visitor_id: str) -> Coupon | None:
    return (
        Coupon.objects.filter(visitor_id=visitor_id, source=Coupon.SOURCE_REFERRAL_WELCOME)
        .order_by("created_at")
        .first()
    )


# The referrer's reward ------------------------------------------------------------------
def reward_referrer(referral_code: str, referred_visitor_id: str, order_id: str) -> Coupon | None:
    """Issue the referring customer's reward after the referred visitor's first order, once
    per referred visitor, and email it to them. Unknown, expired or inactive codes and
    self-referrals are ignored (None)."""
    code = _usable_code(referral_code)
    if code is None:
        return None
    referrer_visitor_id = _referrer_visitor_id(code)
    if referrer_visitor_id == referred_visitor_id or _same_account(code, referred_visitor_id):
        return None
    email = _referrer_email(code)
    try:
        with transaction.atomic():
            coupon = _issue_reward(code, referrer_visitor_id, referred_visitor_id, email)
    except IntegrityError:
        return None  # this referred visitor already earned the reward
    logger.info("personalization: referral %s rewarded for order %s", code.code, order_id)
    if email:
        transaction.on_commit(lambda: _send_reward_email(coupon))
    return coupon


def _same_account(code: ReferralCode, visitor_id: str) -> bool:
    if code.user_id is None:
        return False
    return Visitor.objects.filter(pk=visitor_id, user_id=code.user_id).exists()


def _issue_reward(
    code: ReferralCode,
    referrer_visitor_id: str | None,
    referred_visitor_id: str,
    email: str,
) -> Coupon:
    try:
        product = _most_wanted_product(referrer_visitor_id)
    except Exception:  # the reward matters more than making it personal
        logger.exception("personalization: could not pick a product for a referral reward")
        product = None
    percent = app_settings.REFERRAL_REWARD_PERCENT
    common: dict[str, Any] = {
        "source": Coupon.SOURCE_REFERRAL_REWARD,
        "value": percent,
        "email": email,
        "visitor_id": referrer_visitor_id,
        "days": app_settings.REFERRAL_COUPON_DAYS,
        "referral": code,
        "referred_visitor_id": referred_visitor_id,
    }
    if product is None:
        note = _("%(percent)s%% off your next order") % {"percent": percent}
        return coupons.issue(note=note, **common)
    adapter = get_adapter()
    note = _("%(percent)s%% off %(product)s, which you looked at") % {
        "percent": percent,
        "product": adapter.name(product),
    }
    return coupons.issue(product_ids=[adapter.pk(product)], note=note, **common)


def _referrer_email(code: ReferralCode) -> str:
    user = code.user
    if user is not None:
        field = user.get_email_field_name() if hasattr(user, "get_email_field_name") else "email"
        email = getattr(user, field, "") or ""
        if email:
            return str(email)
    return code.signup.email if code.signup is not None else ""


def _most_wanted_product(visitor_id: str | None) -> Any:
    """The product the visitor viewed most and has not bought (still available), or None."""
    if visitor_id is None:
        return None
    data = storage.load(visitor_id)
    if data is None or not data.product_views:
        return None
    bought = set(data.purchased) | _purchased_keys(visitor_id)
    ranked = sorted(
        (key for key in data.product_views if key not in bought),
        key=lambda key: -data.product_views[key],
    )
    adapter = get_adapter()
    for key in ranked:
        product = adapter.get_by_field("pk", key)
        if product is not None and adapter.is_available(product):
            return product
    return None


def _purchased_keys(visitor_id: str) -> set[str]:
    """Products in the visitor's recorded orders (the Visitor row does not keep them)."""
    keys: set[str] = set()
    orders = Conversion.objects.filter(visitor_id=visitor_id, kind=Conversion.PURCHASE)
    for items in orders.values_list("items", flat=True):
        for line in items or ():
            if isinstance(line, list | tuple) and line:
                keys.add(str(line[0]))
    return keys


def _send_reward_email(coupon: Coupon) -> None:
    """Tell the referrer about their reward; a mail failure is logged, never raised."""
    expires = coupon.expires_at.date().isoformat() if coupon.expires_at else ""
    with translation.override(settings.LANGUAGE_CODE):  # the shop's language, as every email
        subject = str(_("Thank you for recommending us"))
        body = _(
            "A friend you referred just placed their first order. As a thank-you, here is "
            "your code %(code)s: %(offer)s.\n\nValid until %(expires)s."
        ) % {"code": coupon.code, "offer": coupon.note or coupon.describe(), "expires": expires}
    try:
        send_mail(subject, body, None, [coupon.email])
    except Exception:
        logger.exception(
            "personalization: could not email a referral reward (coupon %s)", coupon.pk
        )
