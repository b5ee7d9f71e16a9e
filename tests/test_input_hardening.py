"""Bad input on the request path: JSON limits, cross-site beacons, control characters,
links that lead elsewhere, CSV cells a spreadsheet would run. Each is a 4xx that says what is
wrong (or harmless text), never a 500: on PostgreSQL a NUL byte reaching a query is one."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.exceptions import ParseError

from personalization import csvsafe
from personalization.api.parsers import MAX_BODY_BYTES, MAX_DEPTH, LimitedJSONParser
from personalization.models import Banner, Event, Exposure, Placement, Signup
from personalization.targeting.content import safe_link
from tests.conftest import BROWSER_UA

EVENTS = "/personalization/api/events/"
SIGNUP = "/personalization/api/signup/"
SAME_ORIGIN = {"HTTP_SEC_FETCH_SITE": "same-origin", "HTTP_ORIGIN": "http://testserver"}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def parse(text: str | bytes) -> object:
    raw = text.encode() if isinstance(text, str) else text
    return LimitedJSONParser().parse(io.BytesIO(raw), "application/json", {})


def tracked_client() -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    client.get("/profile/")  # the visitor cookie comes back from now on
    return client


# 1. JSON bodies: depth, size, encoding ---------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("url", [EVENTS, SIGNUP])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 8000])
def test_deep_json_is_a_400_that_says_so(url, depth):
    response = tracked_client().post(url, nested(depth), "application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": f"JSON nested deeper than {MAX_DEPTH} arrays or objects is not accepted."
    }


def test_the_depth_limit_counts_arrays_and_objects_not_brackets_in_strings():
    assert parse(nested(MAX_DEPTH)) is not None
    assert parse('{"a": ' * (MAX_DEPTH - 1) + "1" + "}" * (MAX_DEPTH - 1))
    assert parse(json.dumps({"consent": "[[[{{{" * 200 + '"\\'})) == {
        "consent": "[[[{{{" * 200 + '"\\'
    }
    with pytest.raises(ParseError, match="nested deeper"):
        parse('{"a": [' + nested(MAX_DEPTH - 1) + "]}")


@pytest.mark.django_db
@pytest.mark.parametrize("url", [EVENTS, SIGNUP])
def test_a_body_over_the_size_limit_is_a_400_that_says_so(url):
    body = json.dumps({"email": "a@example.com", "consent": "x" * MAX_BODY_BYTES})
    response = tracked_client().post(url, body, "application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": f"The body is larger than {MAX_BODY_BYTES} bytes."}
    assert not Signup.objects.exists()


def test_the_parser_itself_reads_no_more_than_the_limit():
    with pytest.raises(ParseError, match="larger than"):
        parse(b" " * MAX_BODY_BYTES + b"1")
    assert parse(b" " * (MAX_BODY_BYTES - 1) + b"1") == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"email": "\xff"}', "JSON parse error"),  # not UTF-8
        (b'{"limit": NaN}', "JSON parse error"),
        (b'{"n": ' + b"9" * 5000 + b"}", "JSON parse error"),  # too many digits for an int
    ],
)
def test_undecodable_json_is_a_parse_error(body, message):
    with pytest.raises(ParseError, match=message):
        parse(body)


@pytest.mark.django_db
@pytest.mark.parametrize("charset", ["bz2_codec", "rot13"])
def test_a_charset_that_is_no_text_encoding_is_a_400(charset):
    # bz2 would inflate a small body past every limit: only text encodings are read.
    response = tracked_client().generic(
        "POST", SIGNUP, b"{}", content_type=f"application/json; charset={charset}"
    )
    assert response.status_code == 400
    assert "charset" in response.json()["detail"]


# 2. The events endpoint: no cross-site posts ------------------------------------------------
@pytest.mark.django_db
def test_a_text_plain_beacon_needs_the_browsers_word_that_it_comes_from_the_shop():
    client = tracked_client()
    own_id = client.get("/personalization/api/me/").json()["id"]
    exposure = Exposure.objects.create(
        visitor_id=own_id, placement="home-hero", kind=Exposure.BANNER, content="default"
    )
    body = json.dumps({"type": "click", "exposure": str(exposure.pk)})
    cross_site = {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_ORIGIN": "https://evil.example"}
    assert client.post(EVENTS, body, "text/plain", **cross_site).status_code == 403
    assert client.post(EVENTS, body, "text/plain").status_code == 403  # says nothing
    assert not Event.objects.exists()
    assert client.post(EVENTS, body, "text/plain", **SAME_ORIGIN).status_code == 204
    assert client.post(EVENTS, body, "application/xml", **SAME_ORIGIN).status_code == 415
    assert Event.objects.count() == 1


def test_the_page_script_beacons_text_plain_and_falls_back_to_json():
    from pathlib import Path

    import personalization

    script = Path(personalization.__file__).parent / "static/personalization/personalization.js"
    source = script.read_text()
    assert 'new Blob([body], { type: "text/plain" })' in source
    assert '"Content-Type": "application/json" } }).catch' in source  # the fetch fallback


# 3. Control characters --------------------------------------------------------------------
API_GETS = ["/personalization/api/me/", "/personalization/api/recommendations/"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", [*API_GETS, "/personalization/api/schema/"])
@pytest.mark.parametrize("query", ["?x=a%00b", "?a%00=1", "?placement=home%1b[31m", "?q=%7f"])
def test_a_control_character_in_any_api_query_is_a_400(url, query):
    response = tracked_client().get(url + query, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert "control character" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", [EVENTS, SIGNUP])
def test_a_control_character_in_a_post_query_is_a_400(url):
    response = tracked_client().post(url + "?ref=%00", {"type": "x"}, "application/json")
    assert response.status_code == 400
    assert "control character" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"email": "ada@example.com", "consent": "I agree\u0000"},
        {"email": "ada@example.com", "consent": "half \ud800 a pair"},
        {"email": "ada@example.com", "consent": "escape \u001b[31m"},
        {"email": "ada@example.com", "\u0000": "key"},
        {"email": ["ada@example.com", "\u0000"]},
    ],
)
def test_a_control_character_in_a_json_string_is_a_400(body):
    response = tracked_client().post(SIGNUP, json.dumps(body), "application/json")
    assert response.status_code == 400
    assert "control character" in response.json()["detail"]
    assert not Signup.objects.exists()


@pytest.mark.django_db
def test_an_events_product_with_a_nul_byte_is_a_400():
    body = json.dumps({"type": "add_to_cart", "product": "sku\u00009"})
    response = tracked_client().post(EVENTS, body, "application/json")
    assert response.status_code == 400
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_a_form_with_a_nul_byte_is_a_400():
    body = "email=ada%40example.com&consent=yes%00"
    response = tracked_client().post(SIGNUP, body, "application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "control character" in response.json()["detail"]


@pytest.mark.django_db
def test_line_breaks_and_tabs_in_a_consent_text_are_kept():
    consent = "Send me offers.\n\tUnsubscribe any time."
    body = json.dumps({"email": "ada@example.com", "consent": consent})
    assert tracked_client().post(SIGNUP, body, "application/json").status_code == 201
    assert Signup.objects.get().consent_text == consent


@pytest.fixture
def tent(demo):
    from shop_demo.catalog.models import Category, Product

    camping = Category.objects.create(name="Camping", slug="camping")
    return Product.objects.create(
        name="Blue Tent", slug="blue-tent", category=camping, price=Decimal("99.90"), stock=3
    )


@pytest.mark.django_db
def test_the_demo_search_drops_control_characters(tent):
    response = Client(HTTP_USER_AGENT=BROWSER_UA).get("/search/?q=Te%00nt%1b")
    assert response.status_code == 200
    assert response.context["query"] == "Tent"
    assert b"Blue Tent" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("number", ["A%00", "%00", "A-1%1b", "A%7f"])
def test_a_demo_order_number_with_a_control_character_is_a_404(tent, number):
    response = Client(HTTP_USER_AGENT=BROWSER_UA).get(f"/orders/{number}/")
    assert response.status_code == 404


# 4. Links that lead to another site -------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "\\/evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "\r\n//evil.example",
        " //evil.example",
        "\x00//evil.example",
        "/\x00/evil.example",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " \tjavascript:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "\x01javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "evil.example",
        "",
        None,
    ],
)
def test_safe_link_refuses_what_leads_elsewhere_or_runs(url):
    assert safe_link(url) == ""


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("/sale/", "/sale/"),
        ("  /sale/?q=a b  ", "/sale/?q=a b"),
        ("/sa\tle/", "/sale/"),  # what a browser follows
        ("#newsletter", "#newsletter"),
        ("?page=2", "?page=2"),
        ("https://partner.example/offer", "https://partner.example/offer"),
        ("HTTP://partner.example/", "HTTP://partner.example/"),
        ("mailto:shop@example.com", "mailto:shop@example.com"),
        ("tel:+49301234", "tel:+49301234"),
    ],
)
def test_safe_link_keeps_paths_and_allowed_schemes(url, kept):
    assert safe_link(url) == kept


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/\\evil.example", "/\t/evil.example", "\\\\evil.example"])
def test_staff_cannot_save_a_banner_link_to_another_site(url):
    placement = Placement.objects.create(slug="home-hero", name="Home hero")
    banner = Banner(placement=placement, name="Sale", cta_url=url)
    with pytest.raises(ValidationError) as caught:
        banner.clean()
    assert "cta_url" in caught.value.message_dict


# 5. CSV cells ------------------------------------------------------------------------------
FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def written(rows: list[list[object]]) -> str:
    out = io.StringIO()
    csvsafe.writer(out).writerows(rows)
    return out.getvalue()


def test_csv_text_cells_are_quoted_and_neutralized_numbers_stay_numbers():
    text = written([["Spring sale;=cmd|' /C calc'!A0", -0.2, Decimal("-5.00"), 7, None, True]])
    assert text == '"Spring sale;\'=cmd|\' /C calc\'!A0",-0.2,-5.00,7,"","true"\r\n'


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        "+1",
        "-1+2",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        "＝1",
        ' "=1',
        "a;=1",
        "a,=1",
        "a\t=1",
        "a|=1",
        "a\n=1",
        'a; "=1',
        "a;；＝1",
    ],
)
def test_no_reader_splitting_on_any_separator_finds_a_formula(cell):
    text = written([["label", cell]])
    assert "'" in next(csv.reader(io.StringIO(text)))[1]
    for line in text.splitlines():
        for separator in (",", ";", "\t", "|", "；", "，"):
            for part in line.split(separator):
                assert not part.lstrip(' "').startswith(FORMULA_CHARS), (separator, part)
