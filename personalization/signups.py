"""Email signups: one coupon per email address and per visitor, given with consent."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import coupons, referrals, tracking
from .conf import app_settings
from .models import Coupon, Signup

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .profiling.visitor import VisitorProfile

MAX_EMAIL_LENGTH = 254
MAX_CONSENT_LENGTH = 500

_validate_email = EmailValidator(message=_("Enter a valid email address."))


def normalize_email(email: Any) -> str:
    """The address as stored and compared: stripped and lower-cased."""
    return email.strip().lower() if isinstance(email, str) else ""


def clean_email(email: Any) -> str:
    """The normalized address; raises ValidationError with a message when it is not one."""
    normalized = normalize_email(email)
    if not normalized:
        raise ValidationError(_("Enter an email address."), code="required")
    if len(normalized) > MAX_EMAIL_LENGTH:
        raise ValidationError(_("This email address is too long."), code="max_length")
    _validate_email(normalized)
    return normalized


def _tracked_visitor(request: HttpRequest) -> VisitorProfile | None:
    visitor = getattr(request, "visitor", None)
    return visitor if visitor is not None and visitor.is_tracked else None


def _user(request: HttpRequest) -> Any:
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def existing_signup(email: str, request: HttpRequest) -> Signup | None:
    """The signup for this address, else one this visitor (or account) already made."""
    signups = Signup.objects.select_related("coupon")
    by_email = signups.alias(email_lower=Lower("email")).filter(email_lower=email).first()
    if by_email is not None:
        return by_email
    visitor, user = _tracked_visitor(request), _user(request)
    mine = Q(pk__in=[])
    if visitor is not None:
        mine |= Q(visitor_id=visitor.id)
    if user is not None:
        mine |= Q(user_id=user.pk)
    return signups.filter(mine).order_by("created_at").first()


def sign_up(request: HttpRequest, email: str, consent_text: str = "") -> tuple[Signup, bool]:
    """Sign the visitor up and give them a coupon: ``(signup, created)``.

    An address or visitor that already signed up gets its existing signup back
    (``created`` False). Raises ValidationError for an invalid address. Visitors who are not
    tracked (opted out, bots) may sign up, but nothing links the signup to their browsing.
    """
    email = clean_email(email)
    existing = existing_signup(email, request)
    if existing is not None:
        return existing, False
    visitor = _tracked_visitor(request)
    try:
        with transaction.atomic():
            signup = _create(request, email, consent_text, visitor)
    except IntegrityError:
        winner = Signup.objects.alias(email_lower=Lower("email")).filter(email_lower=email)
        if not winner.exists():
            raise
        return winner.select_related("coupon").get(), False
    if visitor is not None:
        visitor._data.signed_up_at = time.time()
        visitor.dirty = True
        tracking.goal(request, "signup")
    return signup, True


def _create(
    request: HttpRequest, email: str, consent_text: str, visitor: VisitorProfile | None
) -> Signup:
    visitor_id = visitor.id if visitor is not None else None
    coupon = coupons.issue(
        source=Coupon.SOURCE_SIGNUP,
        value=app_settings.SIGNUP_DISCOUNT_PERCENT,
        email=email,
        visitor_id=visitor_id,
        days=app_settings.SIGNUP_COUPON_DAYS,
    )
    signup = Signup.objects.create(
        email=email,
        visitor_id=visitor_id,
        user=_user(request),
        coupon=coupon,
        consent_at=timezone.now(),
        consent_text=(consent_text or "")[:MAX_CONSENT_LENGTH],
    )
    referrals.code_for_signup(signup)
    if signup.consent_text:
        record_consent(
            email, signup.consent_text, visitor_id=visitor_id, user=_user(request), source="popup"
        )
    return signup


def record_consent(
    email: str, consent_text: str, *, visitor_id: str | None, user: Any, source: str
) -> Any:
    """Keep an address that agreed to receive the shop's email, with what it agreed to, when
    and where; an address known already keeps its first consent and gets the visitor and the
    user it lacked. An address that unsubscribed stays unsubscribed."""
    from .emails.audience import subscribe

    return subscribe(email, consent_text, source=source, visitor_id=visitor_id, user=user)


def belongs_to(signup: Signup, request: HttpRequest) -> bool:
    """Whether the signup was made by this visitor or account (so its code may be shown)."""
    visitor, user = _tracked_visitor(request), _user(request)
    if visitor is not None and signup.visitor_id == visitor.id:
        return True
    return user is not None and signup.user_id == user.pk


def forget_visitor(visitor_id: str) -> None:
    """Erase a visitor's signups (their email addresses) and their unused coupons; used
    coupons stay for the shop's accounts, without the address."""
    from .models import EmailRecipient

    with transaction.atomic():
        addresses = list(
            Signup.objects.filter(visitor_id=visitor_id).values_list("email", flat=True)
        )
        # The addresses and every email prepared for them (EmailSend cascades).
        EmailRecipient.objects.filter(visitor_id=visitor_id).delete()
        for address in addresses:
            EmailRecipient.objects.filter(email__iexact=address).delete()
        Signup.objects.filter(visitor_id=visitor_id).delete()
        mine = Coupon.objects.filter(visitor_id=visitor_id)
        mine.filter(redeemed_at__isnull=True, signup__isnull=True).delete()
        mine.update(email="", visitor=None)


def for_visitor(visitor_id: str) -> list[Signup]:
    return list(Signup.objects.filter(visitor_id=visitor_id).select_related("coupon"))
