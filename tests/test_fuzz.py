"""Generated bad input for every endpoint of the app and every page of the demo shop: NUL
bytes and control characters, huge strings, deep JSON, wrong types, invalid UTF-8, odd
content types and odd methods, in the query, the path and the body. Not one answer may be a
5xx, and no request may raise.

A seeded generator (``PZN_FUZZ_SEED`` picks another seed; the default one is fixed so a
failure can be replayed), split in parametrized batches so pytest-xdist spreads them.
"""

from __future__ import annotations

import json
import logging
import os
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.core import signing
from django.test import Client

from personalization import urls as personalization_urls
from personalization.emails import links
from personalization.models import Exposure
from tests.conftest import BROWSER_UA

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

SEED = int(os.environ.get("PZN_FUZZ_SEED") or 20261102)
BATCHES = 16
# Requests per batch and target (625 a batch, 10,000 in all): the most to the endpoints any
# visitor reaches, the fewest to the staff-only report, which computes for 80-120 ms.
PER_BATCH = {
    "events": 120, "signup": 90, "recommendations": 75, "fragments": 40, "me": 40,
    "preview": 15, "schema": 20,
    "report-api": 8, "report-page": 6, "email-unsubscribe": 20, "email-click": 20,
    "email-confirm": 10, "email-open": 10,
    "home": 25, "search": 35, "category": 25, "product": 25, "cart": 15, "cart-change": 35,
    "checkout": 30, "orders": 35, "accounts": 25, "pretend": 16,
}  # fmt: skip

NASTY_TEXTS = [
    "", " ", "\x00", "a\x00b", "\x00" * 50, "\x01\x02\x03", "\x1b[31mred", "\x7f", "\x85",
    "\t", "\r\n", "line\nbreak", "\u2028", "\ufeff", "\ufffe", "\uffff", "\U0001f600",
    "e\u0301", "\u202eevil", "null", "None", "true", "-1", "0", "1e309", "NaN", "-0",
    "9" * 5000, "1" * 20, "' OR 1=1 --", '"; DROP TABLE x; --', "%", "%00", "%%", "{{ x }}",
    "{% debug %}", "<script>alert(1)</script>", "../../etc/passwd", "/\\evil.example",
    "//evil.example", "javascript:alert(1)", "=cmd|' /C calc'!A0", "a;=1+1", "@SUM(A1)",
    "ü" * 300, "x" * 70000, "2026-02-30", "2026-11-01", "0000-00-00", "9999-12-31",
    "2026-11-01T00:00:00", "10000-01-01", "--", "*", "?", "#", "&", "=", "+", " a@b.c ",
]  # fmt: skip
# Not a codec that is no text encoding (charset=bz2_codec): Django itself fails on it in
# WSGIRequest() once there is a query string, before any middleware or view of a project
# runs. tests/test_input_hardening.py checks the API's own answer to one.
CONTENT_TYPES = [
    "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
    "application/json; charset=cp1252", "application/json; charset=nope", "text/plain",
    "text/plain;charset=UTF-8", "TEXT/PLAIN", "application/x-www-form-urlencoded",
    "multipart/form-data", "multipart/form-data; boundary=xyz", "application/xml", "",
    "*/*", "application/json; charset=utf-16", "text/html", "application/vnd.api+json", ";;;",
]  # fmt: skip
ODD_METHODS = ["PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "FOO", "CONNECT"]
ACCEPTS = ["application/json", "text/html", "*/*", "application/xml", "", "text/csv", "\x00"]
ORIGINS = [
    {},
    {"HTTP_SEC_FETCH_SITE": "same-origin", "HTTP_ORIGIN": "http://testserver"},
    {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_ORIGIN": "https://evil.example"},
    {"HTTP_ORIGIN": "null"},
    {"HTTP_ORIGIN": "http://[::1"},
    {"HTTP_SEC_FETCH_SITE": "\x00"},
]


@dataclass
class Shop:
    """What plausible values point at: real products, exposures, a category."""

    product_ids: list[str]
    product_slugs: list[str]
    exposures: list[str]
    category: str
    unsubscribe_token: str = ""
    click_token: str = ""
    open_token: str = ""


@dataclass
class Target:
    """An endpoint: its path (given the generator and the shop), methods and field names."""

    path: Callable[[Fuzzer, Shop], str]
    methods: tuple[str, ...]
    fields: tuple[str, ...] = ()
    staff: bool = False
    plausible: dict[str, Callable[[Fuzzer, Shop], object]] = field(default_factory=dict)
    form: bool = False  # posts forms (URL-encoded) rather than JSON


class Fuzzer:
    """Seeded generator of bad (and sometimes good) input."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def text(self) -> str:
        roll = self.rng.random()
        if roll < 0.55:
            return self.rng.choice(NASTY_TEXTS)
        if roll < 0.75:
            alphabet = [chr(self.rng.randrange(0, 0x250)) for _ in range(12)] + ["\x00", "\\"]
            return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randrange(1, 40)))
        if roll < 0.85:
            return chr(self.rng.randrange(0xD800, 0xE000))  # half of a surrogate pair
        return self.rng.choice(NASTY_TEXTS) + self.rng.choice(NASTY_TEXTS)

    def value(self, name: str, target: Target, shop: Shop) -> object:
        """A value for a field: plausible, of a wrong type, or nasty text."""
        roll = self.rng.random()
        if roll < 0.3 and name in target.plausible:
            return target.plausible[name](self, shop)
        if roll < 0.45:
            return self.wrong_type()
        return self.text()

    def wrong_type(self) -> object:
        return self.rng.choice(
            [None, True, 0, -1, 2**70, 1.5, 1e308, [], {}, ["a"], {"a": "\x00"}, [[[]]], [None]]
        )

    def deep(self) -> str:
        depth = self.rng.choice([17, 100, 1000, 5000, 100_000])
        opening, closing = self.rng.choice([("[", "]"), ('{"a":', "}")])
        return opening * depth + "1" + closing * depth

    def query(self, fields: tuple[str, ...], target: Target, shop: Shop) -> str:
        names = [*fields, "format", self.text()[:20]]
        pairs = []
        for _ in range(self.rng.randrange(0, 5)):
            name = self.rng.choice(names)
            value = self.value(name, target, shop)
            pairs.append((name, value if isinstance(value, str) else json.dumps(value)))
        encoded = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in pairs)
        if self.chance(0.1):
            encoded += self.rng.choice(["&%FF%FE=%C0%80", "&q=%ED%A0%80", "&&&=", "&%", "&a=%zz"])
        return encoded

    def body(self, fields: tuple[str, ...], target: Target, shop: Shop) -> tuple[bytes, str]:
        usual = "application/x-www-form-urlencoded" if target.form else "application/json"
        content_type = usual if self.chance(0.5) else self.rng.choice(CONTENT_TYPES)
        roll = self.rng.random()
        if roll < 0.55:
            data = {name: self.value(name, target, shop) for name in fields if self.chance(0.8)}
            if self.chance(0.2):
                data[self.text()[:30]] = self.value("", target, shop)
            if "form" in content_type:
                raw = "&".join(f"{_quote(k)}={_quote(str(v))}" for k, v in data.items())
                return raw.encode("utf-8", "surrogatepass"), content_type
            return json.dumps(data).encode(), content_type
        if roll < 0.7:
            return self.deep().encode(), content_type
        if roll < 0.8:
            return json.dumps(self.wrong_type()).encode(), content_type
        if roll < 0.9:
            return self.rng.choice(
                [b"\xff\xfe\x00", b'{"email": "\xc0\x80"}', b"\xef\xbb\xbf{}", b"{" * 3, b"\x00"]
            ), content_type
        return ("x" * self.rng.choice([1, 16 * 1024 + 1, 300_000])).encode(), content_type


def _quote(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _one_of(values: list[str]) -> Callable[[Fuzzer, Shop], str]:
    return lambda fuzz, shop: fuzz.rng.choice(values)


def _path_part(real: Callable[[Shop], str]) -> Callable[[Fuzzer, Shop], str]:
    """A path parameter: the real one, or nasty text (percent-encoded, so NUL and slashes
    reach the URL resolver as they would from a browser)."""

    def make(fuzz: Fuzzer, shop: Shop) -> str:
        return real(shop) if fuzz.chance(0.3) else _quote(fuzz.text()[:300]) or "x"

    return make


EXPOSURE = {"exposure": lambda fuzz, shop: fuzz.rng.choice(shop.exposures)}
PERIOD = {
    "start": _one_of(["2026-11-01", "2026-10-01", ""]),
    "end": _one_of(["2026-11-30", "2026-11-01", "2026-10-01"]),
    "goal": _one_of(["purchase", "any", "signup", "nobody"]),
}
APP = {
    "events": Target(
        lambda f, s: "/personalization/api/events/",
        ("POST",),
        ("type", "exposure", "product"),
        plausible={
            "type": _one_of(["click", "add_to_cart", "popup_shown", "popup_dismissed"]),
            "product": lambda f, s: f.rng.choice(s.product_ids),
            **EXPOSURE,
        },
    ),
    "signup": Target(
        lambda f, s: "/personalization/api/signup/",
        ("POST",),
        ("email", "consent"),
        plausible={
            "email": _one_of(["ada@example.com", "b@example.com", "ADA@EXAMPLE.COM "]),
            "consent": _one_of(["I agree.", ""]),
        },
    ),
    "recommendations": Target(
        lambda f, s: "/personalization/api/recommendations/",
        ("GET",),
        ("placement", "product", "limit"),
        plausible={
            "placement": _one_of(["home-for-you", "product-related"]),
            "product": lambda f, s: f.rng.choice(s.product_ids),
            "limit": _one_of(["1", "4", "24", "25", "0"]),
        },
    ),
    "fragments": Target(
        lambda f, s: "/personalization/fragments/",
        ("GET", "POST"),
        ("page", "referrer", "f"),
        plausible={
            "page": _one_of(["http://testserver/", "/products/tent-0/", "http://x/?utm_source=a"]),
            "referrer": _one_of(["", "https://www.google.com/", "http://testserver/"]),
            "f": _one_of(
                [
                    "kind=banner&placement=home-hero",
                    "kind=popup",
                    "kind=recommendations&placement=home-for-you&limit=4",
                    "kind=recommendations&placement=product-related&product=1&limit=99",
                ]
            ),
        },
    ),
    "preview": Target(
        lambda f, s: "/personalization/preview/",
        ("GET", "POST"),
        ("segment", "country", "visit", "group", "banner", "strategy", "preview", "next"),
    ),
    "me": Target(lambda f, s: "/personalization/api/me/", ("GET", "DELETE")),
    "schema": Target(
        lambda f, s: "/personalization/api/schema/", ("GET",), ("format", "lang", "version")
    ),
    "report-api": Target(
        lambda f, s: "/personalization/api/report/",
        ("GET",),
        ("start", "end", "goal", "format"),
        staff=True,
        plausible=PERIOD,
    ),
    "report-page": Target(
        lambda f, s: "/admin/personalization/report/",
        ("GET",),
        ("start", "end", "goal", "format"),
        staff=True,
        plausible={**PERIOD, "format": _one_of(["html", "csv", "json"])},
    ),
}
_UNSUBSCRIBE_TOKEN = _path_part(lambda shop: shop.unsubscribe_token)
_CLICK_TOKEN = _path_part(lambda shop: shop.click_token)
APP["email-unsubscribe"] = Target(
    lambda f, s: f"/personalization/email/unsubscribe/{_UNSUBSCRIBE_TOKEN(f, s)}/",
    ("GET", "POST"),
    ("List-Unsubscribe",),
    plausible={"List-Unsubscribe": _one_of(["One-Click"])},
    form=True,
)
APP["email-confirm"] = Target(
    lambda f, s: f"/personalization/email/confirm/{_CLICK_TOKEN(f, s)}/", ("GET", "POST")
)
APP["email-click"] = Target(
    lambda f, s: f"/personalization/email/c/{_CLICK_TOKEN(f, s)}/",
    ("GET", "HEAD"),
)
_OPEN_TOKEN = _path_part(lambda shop: shop.open_token)
APP["email-open"] = Target(
    lambda f, s: f"/personalization/email/o/{_OPEN_TOKEN(f, s)}.gif", ("GET", "HEAD")
)
DEMO = {
    "home": Target(
        lambda f, s: "/", ("GET",), ("ref", "utm_source", "utm_medium", "utm_campaign", "gclid")
    ),
    "search": Target(lambda f, s: "/search/", ("GET",), ("q", "page")),
    "category": Target(
        lambda f, s: f"/categories/{_path_part(lambda shop: shop.category)(f, s)}/",
        ("GET",),
        ("sort", "page"),
    ),
    "product": Target(
        lambda f, s: f"/products/{_path_part(lambda shop: shop.product_slugs[0])(f, s)}/",
        ("GET",),
    ),
    "cart": Target(lambda f, s: "/cart/", ("GET",)),
    "cart-change": Target(
        lambda f, s: "/cart/{}/{}/".format(
            f.rng.choice(["add", "update", "remove"]),
            _path_part(lambda shop: shop.product_ids[0])(f, s),
        ),
        ("POST",),
        ("quantity", "next"),
        plausible={"quantity": _one_of(["1", "2", "0", "99", "100"])},
        form=True,
    ),
    "checkout": Target(
        lambda f, s: "/checkout/",
        ("POST", "GET"),
        ("name", "email", "street", "postal_code", "city", "country", "coupon", "token"),
        plausible={"country": _one_of(["DE", "FR"]), "email": _one_of(["ada@example.com"])},
        form=True,
    ),
    "orders": Target(lambda f, s: f"/orders/{_path_part(lambda shop: 'A-1001')(f, s)}/", ("GET",)),
    "accounts": Target(
        lambda f, s: f.rng.choice(["/accounts/signup/", "/accounts/login/", "/accounts/orders/"]),
        ("POST", "GET"),
        ("username", "password", "password1", "password2", "next", "page"),
        form=True,
    ),
    "pretend": Target(lambda f, s: "/demo/pretend/", ("POST",), ("country", "next"), form=True),
}
TARGETS = {**APP, **DEMO}


@pytest.fixture
def shop(demo, settings) -> Shop:
    from shop_demo.catalog.models import Category, Product

    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "SIGNUP_THROTTLE_RATE": "1000000/minute",  # reach the parsing, not the throttle
        "EVENTS_THROTTLE_RATE": "1000000/minute",
        "VIEW_WRITE_DELAY_SECONDS": 0,  # rows written in the test's own transaction
    }
    camping = Category.objects.create(name="Camping", slug="camping", position=1)
    products = [
        Product.objects.create(
            name=f"Tent {n}", slug=f"tent-{n}", category=camping, price=Decimal("9.90"), stock=5
        )
        for n in range(3)
    ]
    return Shop(
        product_ids=[str(p.pk) for p in products],
        product_slugs=[p.slug for p in products],
        exposures=[str(uuid.uuid4())],
        category=camping.slug,
        unsubscribe_token=links.unsubscribe_token(1),
        click_token=links.click_token(uuid.uuid4(), "/"),
        open_token=signing.dumps(str(uuid.uuid4()), salt=links.OPEN_SALT, compress=True),
    )


def _clients(shop: Shop) -> tuple[Client, Client]:
    """A returning visitor (tracked, with exposures of their own) and a logged-in staff."""
    visitor = Client(HTTP_USER_AGENT=BROWSER_UA, raise_request_exception=False)
    visitor.get("/")
    own_id = visitor.get("/personalization/api/me/").json()["id"]
    for placement in ("home-hero", "popup"):
        exposure = Exposure.objects.create(
            visitor_id=own_id, placement=placement, kind=Exposure.BANNER, content="default"
        )
        shop.exposures.append(str(exposure.pk))
    staff = Client(HTTP_USER_AGENT=BROWSER_UA, raise_request_exception=False)
    user = get_user_model().objects.create_user("fuzz-staff", "", "pw", is_staff=True)
    user.is_superuser = True
    user.save()
    staff.force_login(user)
    return visitor, staff


def _request(fuzz: Fuzzer, target: Target, shop: Shop) -> dict:
    method = fuzz.rng.choice(target.methods) if fuzz.chance(0.8) else fuzz.rng.choice(ODD_METHODS)
    path = target.path(fuzz, shop)
    query = fuzz.query(target.fields, target, shop) if fuzz.chance(0.7) else ""
    body, content_type = b"", "application/octet-stream"
    if method not in ("GET", "HEAD"):
        body, content_type = fuzz.body(target.fields, target, shop)
    headers = dict(fuzz.rng.choice(ORIGINS))
    if fuzz.chance(0.2):
        headers["HTTP_ACCEPT"] = fuzz.rng.choice(ACCEPTS)
    return {
        "method": method,
        "path": path + ("?" + query if query else ""),
        "data": body,
        "content_type": content_type,
        **headers,
    }


@pytest.mark.parametrize("batch", range(BATCHES))
def test_no_input_makes_a_5xx(shop, batch, caplog):
    caplog.set_level(logging.CRITICAL, logger="django")  # 4xx warnings by the thousand
    fuzz = Fuzzer(SEED + batch)
    visitor, staff = _clients(shop)
    stranger = Client(HTTP_USER_AGENT=BROWSER_UA, raise_request_exception=False)
    names = [name for name, count in PER_BATCH.items() for _ in range(count)]
    fuzz.rng.shuffle(names)
    failures = []
    for name in names:
        target = TARGETS[name]
        client = staff if target.staff else (stranger if fuzz.chance(0.1) else visitor)
        request = _request(fuzz, target, shop)
        try:
            response = client.generic(**request)
            status = response.status_code
        except Exception as exc:  # the test client re-raises what a view raised
            status, response = repr(exc), None
        if response is None or status >= 500:
            failures.append((name, status, _shown(request)))
    assert not failures, f"{len(failures)} failures, for example: {failures[:5]}"


def test_the_batches_send_ten_thousand_inputs_to_every_target():
    assert BATCHES * sum(PER_BATCH.values()) >= 10_000
    assert set(PER_BATCH) == set(TARGETS)
    assert min(PER_BATCH.values()) > 0
    urls = {str(pattern.pattern) for pattern in personalization_urls.urlpatterns}
    assert urls == {"api/me/", "api/signup/", "api/events/", "api/recommendations/",
                    "api/report/", "api/schema/", "fragments/", "preview/",
                    "email/unsubscribe/<str:token>/",
                    "email/c/<str:token>/", "email/confirm/<str:token>/",
                    "email/o/<str:token>.gif"}  # fmt: skip


def _shown(request: dict) -> dict:
    shown = dict(request)
    shown["data"] = request["data"][:120]
    shown["path"] = request["path"][:200]
    return shown
