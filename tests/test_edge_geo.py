"""Geolocation from the CDN in front of the site (GEO_HEADERS): its headers win over GeoIP when
trusted, GeoIP fills in what they leave out, and garbage is ignored, never an error."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks

from personalization.models import Segment, SegmentRule, Visitor
from personalization.profiling.geo import (
    EMPTY_GEO,
    GEO_HEADER_PRESETS,
    Geo,
    close_reader,
    edge_geo,
    geo_headers_problem,
    locate,
)
from personalization.targeting import definitions
from personalization.testutils import DEMO_GEOIP_RECORDS, DEMO_IPS, write_geoip_database

LONDON_IP = DEMO_IPS["GB"]


@pytest.fixture(autouse=True)
def _fresh_reader():
    close_reader()
    yield
    close_reader()


@pytest.fixture
def city_db(tmp_path):
    return write_geoip_database(tmp_path / "city.mmdb", DEMO_GEOIP_RECORDS)


@pytest.fixture
def geo_settings(settings, city_db):
    """GeoIP on (a real .mmdb), no CDN trusted; ``use(headers)`` trusts one."""

    def use(headers):
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GEO_HEADERS": headers}

    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "GEOIP_PATH": str(city_db),
        "GEO_HEADERS": None,
    }
    return use


def profile(client, **headers):
    response = client.get("/profile/", REMOTE_ADDR=LONDON_IP, **headers)
    assert response.status_code == 200
    return response.json()


# --- Through the middleware ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_trusted_cdn_header_wins_over_geoip(geo_settings, browser):
    geo_settings("cloudflare")
    body = profile(browser, HTTP_CF_IPCOUNTRY="DE")
    assert body["country"] == "DE"
    assert body["city"] is None  # GeoIP puts the address in GB: nothing of it is mixed in


@pytest.mark.django_db
def test_geoip_answers_when_the_header_is_absent(geo_settings, browser):
    geo_settings("cloudflare")
    body = profile(browser)
    assert (body["country"], body["city"]) == ("GB", "London")


@pytest.mark.django_db
def test_the_header_is_ignored_while_the_setting_is_off(geo_settings, browser):
    body = profile(browser, HTTP_CF_IPCOUNTRY="DE", HTTP_X_COUNTRY_CODE="FR")
    assert (body["country"], body["city"]) == ("GB", "London")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [
        "XX",  # Cloudflare: no country data
        "ZZ",
        "EU",
        "D",
        "DEU",
        "1A",
        "D\u00e9",
        "<script>alert(1)</script>",
        "",
        "   ",
        "DE" + " " * 600,
        "\x00\x01",
    ],
)
def test_garbage_country_headers_fall_back_to_geoip(geo_settings, browser, value):
    geo_settings("cloudflare")
    body = profile(browser, HTTP_CF_IPCOUNTRY=value)
    assert (body["country"], body["city"]) == ("GB", "London")


@pytest.mark.django_db
def test_tor_visitors_have_no_location(geo_settings, browser):
    geo_settings("cloudflare")
    body = profile(browser, HTTP_CF_IPCOUNTRY="T1")
    assert (body["country"], body["city"]) == (None, None)


@pytest.mark.django_db
def test_lower_case_and_blank_padded_codes_are_read(geo_settings, browser):
    geo_settings("cloudflare")
    assert profile(browser, HTTP_CF_IPCOUNTRY=" de ")["country"] == "DE"


@pytest.mark.django_db
def test_the_visitor_row_keeps_the_headers_location(geo_settings, browser):
    geo_settings("cloudfront")
    headers = {
        "HTTP_CLOUDFRONT_VIEWER_COUNTRY": "FR",
        "HTTP_CLOUDFRONT_VIEWER_COUNTRY_NAME": "France",
        "HTTP_CLOUDFRONT_VIEWER_CITY": "Lyon",
        "HTTP_CLOUDFRONT_VIEWER_TIME_ZONE": "Europe/Paris",
    }
    first = profile(browser, **headers)
    profile(browser, **headers)  # the cookie came back: the row is written now
    row = Visitor.objects.get(pk=first["id"])
    assert (row.country_code, row.city) == ("FR", "Lyon")
    assert row.time_zone == "Europe/Paris"


@pytest.mark.django_db
def test_segments_read_the_headers_country(geo_settings, browser):
    definitions.forget_local()
    segment = Segment.objects.create(name="Germany", slug="germany")
    SegmentRule.objects.create(segment=segment, kind="country", value="DE")
    geo_settings("cloudflare")
    assert "germany" in profile(browser, HTTP_CF_IPCOUNTRY="DE")["segments"]
    assert "germany" not in profile(browser)["segments"]


# --- What is read from each header ------------------------------------------------------------


def meta(**headers):
    return {"REMOTE_ADDR": LONDON_IP, **headers}


def test_cloudflare_visitor_location_headers(geo_settings):
    geo_settings("cloudflare")
    found = locate(
        meta(
            HTTP_CF_IPCOUNTRY="CH",
            HTTP_CF_REGION="Zurich",
            # UTF-8 bytes as WSGI hands them over: decoded as Latin-1.
            HTTP_CF_IPCITY="Z\u00fcrich".encode().decode("latin-1"),
            HTTP_CF_IPLATITUDE="47.37690",
            HTTP_CF_IPLONGITUDE="8.54170",
            HTTP_CF_TIMEZONE="Europe/Zurich",
        )
    )
    assert found == Geo("CH", None, "Zurich", "Z\u00fcrich", 47.3769, 8.5417, "Europe/Zurich")


def test_cloudfront_headers_are_percent_decoded(geo_settings):
    geo_settings("cloudfront")
    found = locate(
        meta(
            HTTP_CLOUDFRONT_VIEWER_COUNTRY="BR",
            HTTP_CLOUDFRONT_VIEWER_COUNTRY_NAME="Brazil",
            HTTP_CLOUDFRONT_VIEWER_COUNTRY_REGION="SP",
            HTTP_CLOUDFRONT_VIEWER_COUNTRY_REGION_NAME="S%C3%A3o%20Paulo",
            HTTP_CLOUDFRONT_VIEWER_CITY="S%C3%A3o%20Paulo",
            HTTP_CLOUDFRONT_VIEWER_LATITUDE="-23.55050",
            HTTP_CLOUDFRONT_VIEWER_LONGITUDE="-46.63330",
            HTTP_CLOUDFRONT_VIEWER_TIME_ZONE="America/Sao_Paulo",
        )
    )
    assert found == Geo(
        "BR", "Brazil", "S\u00e3o Paulo", "S\u00e3o Paulo", -23.5505, -46.6333, "America/Sao_Paulo"
    )


def test_geoip_fills_what_the_headers_leave_out_in_the_same_country(geo_settings):
    geo_settings("cloudflare")
    found = locate(meta(HTTP_CF_IPCOUNTRY="GB"))
    assert found == locate({"REMOTE_ADDR": LONDON_IP})  # GeoIP's London, whole
    assert found.city == "London"
    found = locate(meta(HTTP_CF_IPCOUNTRY="GB", HTTP_CF_IPCITY="Croydon"))
    assert (found.city, found.country_name, found.time_zone) == (
        "Croydon",
        "United Kingdom",
        "Europe/London",
    )


def test_without_geoip_the_headers_alone(settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "GEOIP_PATH": None,
        "GEO_HEADERS": "generic",
    }
    assert locate(meta(HTTP_X_COUNTRY_CODE="NL", HTTP_X_CITY="Utrecht")) == Geo(
        "NL", city="Utrecht"
    )
    assert locate(meta()) is EMPTY_GEO


def test_fastly_is_the_generic_preset():
    assert GEO_HEADER_PRESETS["fastly"] == GEO_HEADER_PRESETS["generic"]


def test_a_custom_mapping(geo_settings):
    geo_settings({"country_code": "X-Geo-Country", "city": "X-Geo-City"})
    found = locate(meta(HTTP_X_GEO_COUNTRY="JP", HTTP_X_GEO_CITY="Osaka", HTTP_CF_IPCOUNTRY="DE"))
    assert (found.country_code, found.city) == ("JP", "Osaka")


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [("91", "8.5"), ("47.3", "181"), ("abc", "8.5"), ("47.3", ""), ("nan", "inf"), ("1e3", "2")],
)
def test_bad_coordinates_are_dropped_as_a_pair(geo_settings, latitude, longitude):
    geo_settings("cloudflare")
    found = edge_geo(
        meta(HTTP_CF_IPCOUNTRY="DE", HTTP_CF_IPLATITUDE=latitude, HTTP_CF_IPLONGITUDE=longitude)
    )
    assert found == Geo("DE")


def test_names_are_cleaned_and_cut(geo_settings):
    geo_settings("cloudflare")
    found = edge_geo(
        meta(
            HTTP_CF_IPCOUNTRY="DE",
            HTTP_CF_IPCITY="  Ber\x00lin\u200b \t\n Mitte ",
            HTTP_CF_REGION="R" * 400,
            HTTP_CF_TIMEZONE="../../etc/passwd",
        )
    )
    assert found.city == "Berlin Mitte"
    assert found.region == "R" * 200
    assert found.time_zone is None


def test_an_overlong_header_is_ignored(geo_settings):
    geo_settings("cloudflare")
    found = edge_geo(meta(HTTP_CF_IPCOUNTRY="DE", HTTP_CF_IPCITY="x" * 5000))
    assert found == Geo("DE")


def test_invalid_utf8_percent_encoding_is_kept_as_text(geo_settings):
    geo_settings("cloudfront")
    found = edge_geo(
        meta(HTTP_CLOUDFRONT_VIEWER_COUNTRY="DE", HTTP_CLOUDFRONT_VIEWER_CITY="K%F6ln")
    )
    assert found.city == "K%F6ln"


def test_a_malformed_setting_means_geoip_alone(geo_settings):
    geo_settings({"city": "X-City"})  # no country header
    assert locate(meta(HTTP_X_CITY="Paris")).country_code == "GB"


# --- The system check ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        "cloudflare",
        "CloudFront",
        "fastly",
        "generic",
        {"country_code": "X-Country"},
        {"country_code": "X-Country", "latitude": "X-Lat", "longitude": "X-Lon"},
    ],
)
def test_good_settings_pass_the_check(settings, value):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GEO_HEADERS": value}
    assert geo_headers_problem(value) is None
    assert "personalization.W008" not in {m.id for m in run_checks()}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("akamai", "not one of the presets"),
        (True, "must be None"),
        (["CF-IPCountry"], "must be None"),
        ({"city": "X-City"}, "country_code"),
        ({"country_code": "X-Country", "postcode": "X-Zip"}, "unknown fields (postcode)"),
        ({"country_code": "X_Country"}, "is not a header name"),
        ({"country_code": "X Country"}, "is not a header name"),
        ({"country_code": 3}, "is not a header name"),
        ({"country_code": "X-Country", "latitude": "X-Lat"}, "latitude and longitude"),
    ],
)
def test_malformed_settings_warn(settings, value, says):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GEO_HEADERS": value}
    warnings = [m for m in run_checks() if m.id == "personalization.W008"]
    assert len(warnings) == 1
    assert says in warnings[0].msg
