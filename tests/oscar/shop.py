"""What a customer does in the sandbox shop, through Oscar's own views: browse, add to the
basket, sign up for the popup's coupon, enter a voucher and check out as a guest."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client
from django.urls import reverse

SHIPPING_ADDRESS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "line1": "12 St James's Square",
    "line4": "London",
    "postcode": "SW1Y 4JH",
    "country": "GB",
}


def add_to_basket(client: Client, product: Any, quantity: int = 1) -> Any:
    response = client.post(reverse("basket:add", kwargs={"pk": product.pk}), {"quantity": quantity})
    assert response.status_code == 302, response.content[:2000]
    return response


def sign_up(client: Client, email: str) -> dict[str, Any]:
    response = client.post(
        "/personalization/api/signup/",
        data=json.dumps({"email": email}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def add_voucher(client: Client, code: str) -> Any:
    return client.post(reverse("basket:vouchers-add"), {"code": code}, follow=True)


def check_out_as_guest(client: Client, email: str) -> Any:
    """Gateway, shipping address, shipping method, payment, preview and *place order*: the
    response to placing the order (a redirect to the thank-you page when it was placed)."""
    response = client.post(reverse("checkout:index"), {"username": email, "options": "anonymous"})
    assert response.status_code == 302, response.content[:3000]
    response = client.post(reverse("checkout:shipping-address"), SHIPPING_ADDRESS)
    assert response.status_code == 302, response.content[:3000]
    # One shipping method and no payment form: Oscar walks on to the preview by itself.
    response = client.get(reverse("checkout:shipping-method"), follow=True)
    assert response.status_code == 200
    response = client.get(reverse("checkout:preview"))
    assert response.status_code == 200, response.content[:3000]
    return client.post(reverse("checkout:preview"), {"action": "place_order"})
