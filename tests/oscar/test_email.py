"""Email in an Oscar shop, with nothing but the README's settings and EMAIL_SITE_URL: a
shopper who gave their address and left a basket gets the cart email, with Oscar's prices
and Oscar's basket page behind its button."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.core import mail

from personalization import jobs
from personalization.models import EmailSend, Exposure

from .shop import add_to_basket

pytestmark = pytest.mark.django_db

SITE = "https://books.example"


def test_a_basket_left_behind_gets_the_cart_email(shopper, make_product, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "EMAIL_SITE_URL": SITE,
        "CONTROL_GROUP_PERCENT": 0,
        "EMAIL_QUIET_HOURS": None,
    }
    book = make_product("Dune", price="20.00")
    with time_machine.travel(dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC), tick=False) as clock:
        shopper.get("/")
        shopper.get("/")  # the visitor cookie came back
        response = shopper.post(
            "/personalization/api/signup/",
            {"email": "ada@example.com", "consent": "Email me offers"},
            content_type="application/json",
        )
        assert response.status_code == 201
        assert shopper.get(book.get_absolute_url()).status_code == 200
        add_to_basket(shopper, book, quantity=1)
        clock.shift(3 * 3600)  # the visit ended, and the hour after it
        counts = jobs.run("emails")
    assert counts["sent"] == 2  # the welcome, and the cart
    cart = next(m for m in mail.outbox if "cart" in m.subject.lower())
    assert cart.to == ["ada@example.com"]
    assert "Dune" in cart.body and "20.00" in cart.body
    button = re.search(r"Back to the cart: (\S+)", cart.body).group(1)
    assert button.startswith(f"{SITE}/personalization/email/c/")
    response = shopper.get(button[len(SITE) :])
    assert response.status_code == 302 and response["Location"] == "/basket/"
    send = EmailSend.objects.get(flow="cart_abandonment")
    assert Exposure.objects.get(pk=send.exposure_id).placement == "email-cart_abandonment"
