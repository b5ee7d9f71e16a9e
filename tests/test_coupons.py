"""Coupons: unguessable unique codes, validation reasons, atomic single redemption, discounts."""

from __future__ import annotations

import math
import re
import threading
import time
from decimal import Decimal

import pytest
from django.db import OperationalError, connection

from personalization import coupons
from personalization.coupons import CouponError
from personalization.models import Coupon

pytestmark = pytest.mark.django_db

SYMBOL = "[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]"
LOCKED_RETRIES = 20
CODE_RE = re.compile(rf"^WELCOME-{SYMBOL}{{4}}-{SYMBOL}{{4}}-{SYMBOL}{{4}}$")


def _issue(**fields):
    values = {"source": Coupon.SOURCE_MANUAL, "value": 10}
    values.update(fields)
    return coupons.issue(**values)


# Codes ----------------------------------------------------------------------------------
def test_codes_are_grouped_without_look_alikes_and_never_repeat():
    codes = [coupons.generate_code("welcome") for _ in range(2000)]
    assert all(CODE_RE.match(code) for code in codes), codes[:3]
    assert len(set(codes)) == len(codes)
    assert not set("".join(codes).replace("WELCOME", "")) & set("0O1I")


def test_codes_carry_at_least_50_bits_of_randomness():
    symbols = coupons.GROUPS * coupons.GROUP_LENGTH
    assert symbols * math.log2(len(set(coupons.ALPHABET))) >= 50
    assert len(set(coupons.ALPHABET)) == len(coupons.ALPHABET)


def test_prefix_is_cleaned_and_optional():
    assert coupons.generate_code("spring sale!").startswith("SPRINGSALE-")
    assert re.fullmatch(rf"{SYMBOL}{{4}}(-{SYMBOL}{{4}}){{2}}", coupons.generate_code())


def test_issue_draws_a_new_code_when_one_is_taken(monkeypatch):
    taken = _issue()
    drawn = iter([taken.code, "FRESH-AAAA-BBBB-CCCC"])
    monkeypatch.setattr(coupons, "generate_code", lambda prefix="": next(drawn))
    coupon = _issue()
    assert coupon.code == "FRESH-AAAA-BBBB-CCCC"
    assert Coupon.objects.count() == 2


def test_issue_sets_source_prefix_expiry_and_products(clock):
    coupon = coupons.issue(
        source=Coupon.SOURCE_SIGNUP, value=10, email="a@example.com", days=30, product_ids=[7]
    )
    coupon.refresh_from_db()
    assert coupon.code.startswith("WELCOME-")
    assert coupon.expires_at.isoformat() == "2026-12-02T10:00:00+00:00"
    assert coupon.product_ids == [7]
    assert coupon.describe() == "10%"


@pytest.mark.parametrize(
    ("kind", "value"), [("percent", 0), ("percent", 101), ("amount", -5), ("gift", 5)]
)
def test_issue_rejects_impossible_values(kind, value):
    with pytest.raises(ValueError):
        _issue(kind=kind, value=value)
    assert not Coupon.objects.exists()


# Validation -----------------------------------------------------------------------------
def test_validate_ignores_case_and_spaces():
    coupon = _issue()
    typed = " " + coupon.code.lower().replace("-", "- ", 1) + "\n"
    assert coupons.validate(typed) == coupon


def test_validate_reasons(clock):
    expiring = _issue(days=1)
    used = _issue()
    coupons.redeem(used.code, order_id="A-1")
    with pytest.raises(CouponError) as unknown:
        coupons.validate("NOPE-AAAA-BBBB-CCCC")
    assert unknown.value.reason == "unknown"
    assert str(unknown.value) == "This code does not exist."
    with pytest.raises(CouponError) as redeemed:
        coupons.validate(used.code)
    assert redeemed.value.reason == "redeemed"
    assert coupons.validate(expiring.code) == expiring
    clock.shift(86400)
    with pytest.raises(CouponError) as expired:
        coupons.validate(expiring.code)
    assert expired.value.reason == "expired"
    assert expired.value.message == "This code has expired."


@pytest.mark.parametrize("code", ["", None, 42, "   "])
def test_validate_rejects_non_codes_as_unknown(code):
    with pytest.raises(CouponError) as error:
        coupons.validate(code)
    assert error.value.reason == "unknown"


# Redemption -----------------------------------------------------------------------------
def test_a_coupon_is_redeemed_once():
    coupon = _issue()
    redeemed = coupons.redeem(coupon.code.lower(), order_id="A-1")
    assert redeemed.redeemed_order_id == "A-1"
    assert redeemed.redeemed_at is not None
    with pytest.raises(CouponError) as error:
        coupons.redeem(coupon.code, order_id="A-2")
    assert error.value.reason == "redeemed"
    coupon.refresh_from_db()
    assert coupon.redeemed_order_id == "A-1"


def test_redeeming_again_for_the_same_order_is_idempotent():
    coupon = _issue()
    first = coupons.redeem(coupon.code, order_id="A-1")
    again = coupons.redeem(coupon.code, order_id="A-1")
    assert again.pk == coupon.pk
    assert again.redeemed_at == first.redeemed_at


def test_expired_and_unknown_codes_are_not_redeemed(clock):
    coupon = _issue(days=2)
    clock.shift(2 * 86400)
    with pytest.raises(CouponError) as expired:
        coupons.redeem(coupon.code, order_id="A-1")
    assert expired.value.reason == "expired"
    coupon.refresh_from_db()
    assert coupon.redeemed_at is None
    with pytest.raises(CouponError) as unknown:
        coupons.redeem("NOPE-AAAA-BBBB-CCCC", order_id="A-1")
    assert unknown.value.reason == "unknown"


@pytest.mark.parametrize("order_id", ["", "   ", None, "x" * 65])
def test_redeem_needs_an_order_id(order_id):
    coupon = _issue()
    with pytest.raises(ValueError):
        coupons.redeem(coupon.code, order_id=order_id)
    coupon.refresh_from_db()
    assert coupon.redeemed_at is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_redemptions_of_one_code_let_exactly_one_win():
    coupon = _issue()
    threads_count = 20
    barrier = threading.Barrier(threads_count)
    winners: list[str] = []
    outcomes: list[str] = []
    lock = threading.Lock()

    def redeem(order_id: str) -> str:
        # SQLite answers concurrent writers with "database table is locked": retry a little
        # like a client would, then count it as a failure to redeem.
        for _ in range(LOCKED_RETRIES):
            try:
                coupons.redeem(coupon.code, order_id=order_id)
                return "won"
            except CouponError as error:
                return error.reason
            except OperationalError:
                time.sleep(0.01)
        return "locked"

    def attempt(order_id: str) -> None:
        try:
            barrier.wait()
            outcome = redeem(order_id)
            with lock:
                outcomes.append(outcome)
                if outcome == "won":
                    winners.append(order_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(f"order-{n}",)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) == threads_count
    assert len(winners) == 1, outcomes
    assert set(outcomes) <= {"won", "redeemed", "locked"}
    coupon.refresh_from_db()
    assert coupon.redeemed_order_id == winners[0]


# Discounts ------------------------------------------------------------------------------
def test_percent_discount_is_rounded_to_cents():
    coupon = _issue(value=10)
    assert coupons.discount(coupon, Decimal("59.95")) == Decimal("6.00")
    assert coupons.discount(coupon, "19.90") == Decimal("1.99")


def test_amount_discount_never_exceeds_the_subtotal():
    coupon = _issue(kind="amount", value="5.00", currency="eur")
    assert coupon.describe() == "5.00 EUR"
    assert coupons.discount(coupon, Decimal("20.00")) == Decimal("5.00")
    assert coupons.discount(coupon, Decimal("3.20")) == Decimal("3.20")
    assert coupons.discount(coupon, 0) == Decimal("0.00")


def test_a_product_coupon_counts_only_matching_lines():
    coupon = _issue(value=15, product_ids=[7])
    lines = [(7, 2, Decimal("10.00")), ("8", 1, Decimal("50.00"))]
    assert coupons.discount(coupon, Decimal("70.00"), lines) == Decimal("3.00")
    # Line keys may come as strings (from JSON) while the coupon keeps the int pk.
    assert coupons.discount(coupon, Decimal("20.00"), [("7", 2, "10.00")]) == Decimal("3.00")


def test_a_product_amount_coupon_is_capped_at_the_matching_lines():
    coupon = _issue(kind="amount", value=25, product_ids=["7"])
    lines = [(7, 1, Decimal("12.00")), (8, 1, Decimal("50.00"))]
    assert coupons.discount(coupon, Decimal("62.00"), lines) == Decimal("12.00")


def test_a_product_coupon_without_its_product_is_not_applicable():
    coupon = _issue(value=15, product_ids=[7])
    with pytest.raises(CouponError) as error:
        coupons.discount(coupon, Decimal("50.00"), [(8, 1, Decimal("50.00"))])
    assert error.value.reason == "not-applicable"
    with pytest.raises(CouponError):
        coupons.discount(coupon, Decimal("50.00"))


@pytest.mark.parametrize("subtotal", ["-1", "abc", "NaN", None])
def test_discount_rejects_bad_subtotals(subtotal):
    with pytest.raises(ValueError):
        coupons.discount(_issue(), subtotal)


@pytest.mark.parametrize(
    ("language", "percent", "half", "amount"),
    [("en", "10%", "12.5%", "5.00 EUR"), ("de", "10 %", "12,5 %", "5,00 EUR"),
     ("fr", "10 %", "12,5 %", "5,00 EUR")],
)  # fmt: skip
def test_a_coupon_s_value_is_written_the_language_s_way(language, percent, half, amount):
    from django.utils import translation

    from personalization.models import Coupon

    with translation.override(language):
        assert Coupon(kind=Coupon.PERCENT, value=Decimal("10.00")).describe() == percent
        assert Coupon(kind=Coupon.PERCENT, value=Decimal("12.50")).describe() == half
        assert Coupon(kind=Coupon.AMOUNT, value=Decimal("5"), currency="EUR").describe() == amount
