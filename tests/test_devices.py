"""Device classes (mobile, tablet, desktop) from Client Hints and real browsers' user agents."""

from __future__ import annotations

import pytest
from django.test import Client

from personalization.models import Visitor
from personalization.profiling import devices
from personalization.profiling.bots import MAX_USER_AGENT_LENGTH, is_bot
from personalization.profiling.devices import DESKTOP, DEVICES, MOBILE, TABLET, device_class

# (what it is, user agent, device class); the user agents are the ones these browsers send.
USER_AGENTS = [
    # Phones.
    (
        "iPhone, Safari",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        MOBILE,
    ),
    (
        "iPhone, Chrome",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        MOBILE,
    ),
    (
        "Android phone, Chrome",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        MOBILE,
    ),
    (
        "Android phone, Samsung Internet",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36",
        MOBILE,
    ),
    (
        "Android phone, Firefox",
        "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
        MOBILE,
    ),
    (
        "Android phone, an app's web view",
        "Mozilla/5.0 (Linux; Android 13; SM-A546B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile Safari/537.36",
        MOBILE,
    ),
    (
        "Windows Phone",
        "Mozilla/5.0 (Mobile; Windows Phone 8.1; Android 4.0; ARM; Trident/7.0; Touch; rv:11.0; "
        "IEMobile/11.0; NOKIA; Lumia 635) like iPhone OS 7_0_3 Mac OS X AppleWebKit/537 (KHTML, "
        "like Gecko) Mobile Safari/537",
        MOBILE,
    ),
    (
        "feature phone, Opera Mini",
        "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) "
        "Presto/2.5.25 Version/10.54",
        MOBILE,
    ),
    # Tablets and e-readers.
    (
        "iPad, Safari",
        "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        TABLET,
    ),
    (
        "iPad, Chrome",
        "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        TABLET,
    ),
    (
        "Android tablet, Chrome",
        "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        TABLET,
    ),
    (
        "Android tablet, Firefox",
        "Mozilla/5.0 (Android 14; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0",
        TABLET,
    ),
    (
        "Kindle e-reader",
        "Mozilla/5.0 (X11; U; Linux armv7l like Android; en-us) AppleWebKit/531.2+ (KHTML, "
        "like Gecko) Version/5.0 Safari/531.2+ Kindle/3.0+",
        TABLET,
    ),
    (
        "Kindle Fire, Silk",
        "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Silk/131.3.3 like Chrome/131.0.6778.135 Safari/537.36",
        TABLET,
    ),
    (
        "Kindle Fire, Silk in its mobile mode",
        "Mozilla/5.0 (Linux; U; Android 4.0.3; en-us; KFTT Build/IML74K) AppleWebKit/535.19 "
        "(KHTML, like Gecko) Silk/3.4 Mobile Safari/535.19 Silk-Accelerated=true",
        TABLET,
    ),
    # Desktops.
    (
        "Windows, Chrome",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        DESKTOP,
    ),
    (
        "Windows, Edge",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        DESKTOP,
    ),
    (
        "Windows, Firefox",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        DESKTOP,
    ),
    (
        "macOS, Safari",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/18.1 Safari/605.1.15",
        DESKTOP,
    ),
    (
        "macOS, Chrome",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/131.0.0.0 Safari/537.36",
        DESKTOP,
    ),
    (
        "macOS, Firefox",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0",
        DESKTOP,
    ),
    (
        "Linux, Firefox",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        DESKTOP,
    ),
    (
        "Ubuntu, Firefox",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        DESKTOP,
    ),
    (
        "Linux, Chrome",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        DESKTOP,
    ),
    (
        "Chromebook",
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        DESKTOP,
    ),
    # Neither: crawlers, tools, TVs.
    ("Googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", ""),
    ("Bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", ""),
    ("curl", "curl/8.5.0", ""),
    (
        "smart TV",
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
        "",
    ),
]


def agent(name: str) -> str:
    return next(ua for what, ua, _expected in USER_AGENTS if what == name)


@pytest.fixture(autouse=True)
def _fresh_memo():
    devices._from_user_agent.cache_clear()
    yield
    devices._from_user_agent.cache_clear()


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [(ua, expected) for _name, ua, expected in USER_AGENTS],
    ids=[name for name, _ua, _expected in USER_AGENTS],
)
def test_real_user_agents_get_their_device_class(user_agent, expected):
    assert device_class({"HTTP_USER_AGENT": user_agent}) == expected


def test_the_table_covers_every_class():
    assert {expected for _name, _ua, expected in USER_AGENTS} == {*DEVICES, ""}


def test_crawlers_of_the_table_are_bots_and_browsers_are_not():
    for name, user_agent, _expected in USER_AGENTS:
        crawler = name in ("Googlebot", "Bingbot", "curl")
        assert is_bot(user_agent) is crawler, name


def test_the_mobile_client_hint_settles_mobile_without_parsing():
    desktop_ua = agent("Windows, Firefox")
    assert device_class({"HTTP_USER_AGENT": desktop_ua}) == DESKTOP
    assert device_class({"HTTP_USER_AGENT": desktop_ua, "HTTP_SEC_CH_UA_MOBILE": "?1"}) == MOBILE
    assert device_class({"HTTP_SEC_CH_UA_MOBILE": " ?1 "}) == MOBILE
    assert devices._from_user_agent.cache_info().currsize == 1  # only the first call parsed
    # "?0" is what desktops send: the user agent decides.
    assert device_class({"HTTP_USER_AGENT": desktop_ua, "HTTP_SEC_CH_UA_MOBILE": "?0"}) == DESKTOP


@pytest.mark.parametrize(
    "user_agent",
    ["", "   ", "\x00\xff" * 5000, "Mozilla/5.0 (" * 1000, "☃" * 600, "()" * 4000],
)
def test_missing_or_garbage_user_agents_have_no_class(user_agent):
    assert device_class({"HTTP_USER_AGENT": user_agent}) in ("", *DEVICES)
    assert device_class({}) == ""


def test_long_user_agents_are_parsed_up_to_the_limit_and_memoised():
    iphone = agent("iPhone, Safari")
    padded = iphone + " " + "x" * (3 * MAX_USER_AGENT_LENGTH)
    assert device_class({"HTTP_USER_AGENT": padded}) == MOBILE
    assert device_class({"HTTP_USER_AGENT": padded + "different tail"}) == MOBILE
    info = devices._from_user_agent.cache_info()
    assert (info.misses, info.hits) == (1, 1)  # both truncated to the same key


def test_the_parser_is_ua_parser_not_the_user_agents_package():
    import sys

    import ua_parser

    iphone = agent("iPhone, Safari")
    result = ua_parser.parse(iphone)
    assert result.device is not None and result.device.family == "iPhone"
    assert result.os is not None and (result.os.family, result.os.major) == ("iOS", "18")
    assert result.user_agent is not None and result.user_agent.family == "Mobile Safari"
    assert devices.classify(result, iphone) == MOBILE
    assert device_class({"HTTP_USER_AGENT": agent("Kindle e-reader")}) == TABLET
    assert "user_agents" not in sys.modules


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "expected"),
    [("iPad, Safari", TABLET), ("Android phone, Chrome", MOBILE), ("Windows, Chrome", DESKTOP)],
)
def test_the_stored_visitor_gets_the_class_through_the_middleware(clock, name, expected):
    client = Client(HTTP_USER_AGENT=agent(name))
    client.get("/")
    clock.shift(20)
    client.get("/")  # the cookie came back: the visitor is written
    assert Visitor.objects.get().device == expected


WARM_UP = """
import json, django
django.setup()
import ua_parser
before = "parser" in vars(ua_parser)
from django.core.handlers.wsgi import WSGIHandler
WSGIHandler()  # what a WSGI server builds as it starts: the middleware chain
print(json.dumps({"before": before, "after": "parser" in vars(ua_parser)}))
"""


def test_the_device_rules_load_when_the_process_starts_not_in_a_request():
    """ua-parser's rules take about a quarter of a second to load; the middleware loads
    them as the server builds it, so no visitor's request waits for them."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", WARM_UP], cwd=root, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"before": False, "after": True}
