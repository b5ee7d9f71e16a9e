"""Tests of the landing-referrer classification (pure functions, no database)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from personalization.profiling.referrer import (
    DIRECT,
    SOURCES,
    Referrer,
    classify,
    classify_request,
    is_internal_navigation,
)

OWN_HOSTS = ("shop.example",)
VALID_CODES = {"FRIEND10", "alice_2024", "x-y"}


def validator(code: str) -> bool:
    return code in VALID_CODES


# (referer, params, expected source, expected host)
CASES = [
    # --- search engines, country domains and subdomains --------------------------------------
    ("https://www.google.com/", {}, "search", "www.google.com"),
    ("https://google.com/", {}, "search", "google.com"),
    ("https://www.google.co.uk/", {}, "search", "www.google.co.uk"),
    ("https://www.google.com.br/", {}, "search", "www.google.com.br"),
    ("https://www.google.de/search?q=schuhe", {}, "search", "www.google.de"),
    ("https://www.google.fr/", {}, "search", "www.google.fr"),
    ("https://www.google.co.jp/", {}, "search", "www.google.co.jp"),
    ("https://www.google.com.au/", {}, "search", "www.google.com.au"),
    ("https://news.google.com/articles/abc", {}, "search", "news.google.com"),
    ("https://www.bing.com/search?q=shoes", {}, "search", "www.bing.com"),
    ("https://cn.bing.com/", {}, "search", "cn.bing.com"),
    ("https://duckduckgo.com/", {}, "search", "duckduckgo.com"),
    ("https://lite.duckduckgo.com/lite/", {}, "search", "lite.duckduckgo.com"),
    ("https://search.yahoo.com/search?p=x", {}, "search", "search.yahoo.com"),
    ("https://uk.search.yahoo.com/", {}, "search", "uk.search.yahoo.com"),
    ("https://search.yahoo.co.jp/search?p=x", {}, "search", "search.yahoo.co.jp"),
    ("https://www.yahoo.co.jp/", {}, "search", "www.yahoo.co.jp"),
    ("https://www.baidu.com/link?url=x", {}, "search", "www.baidu.com"),
    ("https://m.baidu.com/", {}, "search", "m.baidu.com"),
    ("https://yandex.ru/search/?text=x", {}, "search", "yandex.ru"),
    ("https://yandex.com/", {}, "search", "yandex.com"),
    ("https://yandex.com.tr/", {}, "search", "yandex.com.tr"),
    ("https://yandex.kz/", {}, "search", "yandex.kz"),
    ("https://yandex.by/", {}, "search", "yandex.by"),
    ("https://yandex.ua/", {}, "search", "yandex.ua"),
    ("https://ya.ru/", {}, "search", "ya.ru"),
    ("https://www.ecosia.org/search?q=x", {}, "search", "www.ecosia.org"),
    ("https://www.ask.com/web?q=x", {}, "search", "www.ask.com"),
    ("https://search.aol.com/aol/search?q=x", {}, "search", "search.aol.com"),
    ("https://search.naver.com/search.naver?query=x", {}, "search", "search.naver.com"),
    ("https://search.seznam.cz/?q=x", {}, "search", "search.seznam.cz"),
    ("https://www.qwant.com/?q=x", {}, "search", "www.qwant.com"),
    ("https://www.startpage.com/", {}, "search", "www.startpage.com"),
    ("https://search.brave.com/search?q=x", {}, "search", "search.brave.com"),
    ("https://www.sogou.com/", {}, "search", "www.sogou.com"),
    ("https://www.so.com/s?q=x", {}, "search", "www.so.com"),
    ("https://search.daum.net/search?q=x", {}, "search", "search.daum.net"),
    ("https://kagi.com/search?q=x", {}, "search", "kagi.com"),
    ("https://yep.com/web?q=x", {}, "search", "yep.com"),
    ("https://www.mojeek.com/search?q=x", {}, "search", "www.mojeek.com"),
    ("https://www.petalsearch.com/", {}, "search", "www.petalsearch.com"),
    # --- webmail, checked before search ---------------------------------------------------------
    ("https://mail.google.com/mail/u/0/", {}, "email", "mail.google.com"),
    ("https://inbox.google.com/", {}, "email", "inbox.google.com"),
    ("https://outlook.live.com/mail/0/inbox", {}, "email", "outlook.live.com"),
    ("https://outlook.office.com/mail/", {}, "email", "outlook.office.com"),
    ("https://outlook.office365.com/owa/", {}, "email", "outlook.office365.com"),
    ("https://mail.yahoo.com/d/folders/1", {}, "email", "mail.yahoo.com"),
    ("https://us-mg6.mail.yahoo.com/neo/launch", {}, "email", "us-mg6.mail.yahoo.com"),
    ("https://mail.aol.com/webmail-std/en-us/suite", {}, "email", "mail.aol.com"),
    ("https://mail.proton.me/u/0/inbox", {}, "email", "mail.proton.me"),
    ("https://mail.protonmail.com/", {}, "email", "mail.protonmail.com"),
    ("https://mail.yandex.ru/", {}, "email", "mail.yandex.ru"),
    ("https://mail.yandex.com.tr/", {}, "email", "mail.yandex.com.tr"),
    ("https://e.mail.ru/inbox/", {}, "email", "e.mail.ru"),
    ("https://mail.zoho.eu/zm/", {}, "email", "mail.zoho.eu"),
    ("https://mail.gmx.com/", {}, "email", "mail.gmx.com"),
    ("https://www.gmx.net/", {}, "email", "www.gmx.net"),
    ("https://gmx.de/", {}, "email", "gmx.de"),
    ("https://web.de/", {}, "email", "web.de"),
    ("https://navigator.web.de/mail", {}, "email", "navigator.web.de"),
    ("https://app.fastmail.com/mail/Inbox/", {}, "email", "app.fastmail.com"),
    ("https://www.mail.com/", {}, "email", "www.mail.com"),
    ("https://mail.163.com/", {}, "email", "mail.163.com"),
    ("https://mail.qq.com/cgi-bin/frame_html", {}, "email", "mail.qq.com"),
    ("https://www.icloud.com/mail/", {}, "email", "www.icloud.com"),
    ("https://www.icloud.com/photos/", {}, "other", "www.icloud.com"),
    ("https://webmail.example.org/?_task=mail", {}, "email", "webmail.example.org"),
    ("https://email.seznam.cz/", {}, "email", "email.seznam.cz"),
    # --- social networks ------------------------------------------------------------------------
    ("https://www.facebook.com/", {}, "social", "www.facebook.com"),
    ("https://m.facebook.com/", {}, "social", "m.facebook.com"),
    ("https://l.facebook.com/l.php?u=x", {}, "social", "l.facebook.com"),
    ("https://lm.facebook.com/", {}, "social", "lm.facebook.com"),
    ("https://web.facebook.com/", {}, "social", "web.facebook.com"),
    ("https://fb.me/abc", {}, "social", "fb.me"),
    ("https://www.messenger.com/t/1", {}, "social", "www.messenger.com"),
    ("https://l.instagram.com/?u=x", {}, "social", "l.instagram.com"),
    ("https://t.co/AbCdEf", {}, "social", "t.co"),
    ("https://twitter.com/someone", {}, "social", "twitter.com"),
    ("https://x.com/someone/status/1", {}, "social", "x.com"),
    ("https://www.linkedin.com/feed/", {}, "social", "www.linkedin.com"),
    ("https://lnkd.in/abc", {}, "social", "lnkd.in"),
    ("https://www.pinterest.com/pin/1/", {}, "social", "www.pinterest.com"),
    ("https://www.pinterest.co.uk/", {}, "social", "www.pinterest.co.uk"),
    ("https://www.pinterest.de/", {}, "social", "www.pinterest.de"),
    ("https://www.pinterest.fr/", {}, "social", "www.pinterest.fr"),
    ("https://pin.it/abc", {}, "social", "pin.it"),
    ("https://out.reddit.com/t3_x", {}, "social", "out.reddit.com"),
    ("https://old.reddit.com/r/shoes/", {}, "social", "old.reddit.com"),
    ("https://www.youtube.com/", {}, "social", "www.youtube.com"),
    ("https://m.youtube.com/watch?v=x", {}, "social", "m.youtube.com"),
    ("https://youtu.be/x", {}, "social", "youtu.be"),
    ("https://www.tiktok.com/", {}, "social", "www.tiktok.com"),
    ("https://www.snapchat.com/", {}, "social", "www.snapchat.com"),
    ("https://someone.tumblr.com/", {}, "social", "someone.tumblr.com"),
    ("https://vk.com/away.php", {}, "social", "vk.com"),
    ("https://ok.ru/", {}, "social", "ok.ru"),
    ("https://weibo.com/", {}, "social", "weibo.com"),
    ("https://www.threads.net/", {}, "social", "www.threads.net"),
    ("https://www.threads.com/", {}, "social", "www.threads.com"),
    ("https://bsky.app/profile/x", {}, "social", "bsky.app"),
    ("https://mastodon.social/@x", {}, "social", "mastodon.social"),
    ("https://mastodon.online/@x", {}, "social", "mastodon.online"),
    ("https://web.whatsapp.com/", {}, "social", "web.whatsapp.com"),
    ("https://t.me/channel", {}, "social", "t.me"),
    ("https://telegram.org/", {}, "social", "telegram.org"),
    ("https://discord.com/channels/1", {}, "social", "discord.com"),
    ("https://www.quora.com/q", {}, "social", "www.quora.com"),
    ("https://news.ycombinator.com/item?id=1", {}, "social", "news.ycombinator.com"),
    ("https://www.xing.com/", {}, "social", "www.xing.com"),
    ("https://line.me/R/", {}, "social", "line.me"),
    # --- lookalikes and ordinary sites are "other" ------------------------------------------
    ("https://lh3.googleusercontent.com/a.png", {}, "other", "lh3.googleusercontent.com"),
    ("https://notgoogle.com/", {}, "other", "notgoogle.com"),
    ("https://google.evil.example/", {}, "other", "google.evil.example"),
    ("https://www.google.com.evil.example/", {}, "other", "www.google.com.evil.example"),
    ("https://mail.google.evil.example/", {}, "other", "mail.google.evil.example"),
    ("https://facebook.com.evil.example/", {}, "other", "facebook.com.evil.example"),
    ("https://mybing.com/", {}, "other", "mybing.com"),
    ("https://ycombinator.com/", {}, "other", "ycombinator.com"),
    ("https://mastodonfan.example/", {}, "other", "mastodonfan.example"),
    ("https://blog.example.net/review", {}, "other", "blog.example.net"),
    ("https://sub.shop.example/", {}, "other", "sub.shop.example"),
    # --- ports, upper case, userinfo, trailing dot, IDNA -------------------------------------
    ("https://WWW.GOOGLE.CO.UK:443/", {}, "search", "www.google.co.uk"),
    ("http://Example.COM:8080/Path", {}, "other", "example.com"),
    ("HTTP://WWW.FACEBOOK.COM/", {}, "social", "www.facebook.com"),
    ("http://user:pw@www.bing.com/", {}, "search", "www.bing.com"),
    ("https://www.google.com./", {}, "search", "www.google.com"),
    ("https://bücher.example/", {}, "other", "xn--bcher-kva.example"),
    ("http://[::1]:8000/", {}, "other", "::1"),
    # --- android-app referrers ------------------------------------------------------------------
    ("android-app://com.google.android.gm", {}, "email", "com.google.android.gm"),
    (
        "android-app://com.google.android.googlequicksearchbox/https/www.google.com",
        {},
        "search",
        "com.google.android.googlequicksearchbox",
    ),
    ("android-app://com.facebook.katana/", {}, "social", "com.facebook.katana"),
    ("android-app://com.instagram.android", {}, "social", "com.instagram.android"),
    ("android-app://com.twitter.android", {}, "social", "com.twitter.android"),
    ("android-app://com.linkedin.android", {}, "social", "com.linkedin.android"),
    ("android-app://com.Slack", {}, "other", "com.slack"),
    # --- internal navigation: a reopened tab is direct, host not kept ----------------------
    ("https://shop.example/cart", {}, "direct", None),
    ("https://www.shop.example/", {}, "direct", None),
    ("http://SHOP.EXAMPLE.:8443/", {}, "direct", None),
    # --- no usable referer ------------------------------------------------------------------
    (None, {}, "direct", None),
    ("", {}, "direct", None),
    ("   ", {}, "direct", None),
    ("javascript:alert(1)", {}, "direct", None),
    ("about:blank", {}, "direct", None),
    ("ftp://www.google.com/", {}, "direct", None),
    ("www.google.com/search", {}, "direct", None),
    ("//www.google.com/", {}, "direct", None),
    ("http://[::1", {}, "direct", None),
    ("http://exa mple.com/", {}, "direct", None),
    ("http://example.com:port/", {}, "direct", None),
    ("http://%65xample.com/", {}, "direct", None),
    ("http:///path-only", {}, "direct", None),
    # --- utm parameters and click ids -----------------------------------------------------------
    (None, {"utm_medium": "email"}, "email", None),
    (None, {"utm_medium": "Newsletter"}, "email", None),
    (None, {"utm_medium": " E-Mail "}, "email", None),
    ("https://mail.google.com/", {"utm_medium": "mail"}, "email", "mail.google.com"),
    ("https://www.google.com/", {"utm_medium": "cpc"}, "campaign", "www.google.com"),
    ("https://www.facebook.com/", {"utm_source": "fb"}, "campaign", "www.facebook.com"),
    (None, {"utm_campaign": "spring"}, "campaign", None),
    (None, {"utm_medium": "emailing-partner"}, "campaign", None),
    ("https://www.google.com/", {"gclid": "Cj0KCQ"}, "campaign", "www.google.com"),
    (None, {"gbraid": "x"}, "campaign", None),
    (None, {"wbraid": "x"}, "campaign", None),
    ("https://www.bing.com/", {"msclkid": "abc"}, "campaign", "www.bing.com"),
    (None, {"dclid": "x"}, "campaign", None),
    ("https://yandex.ru/", {"yclid": "123"}, "campaign", "yandex.ru"),
    ("https://shop.example/", {"utm_source": "internal"}, "campaign", None),
    ("https://www.google.com/", {"utm_source": "   ", "gclid": ""}, "search", "www.google.com"),
    (None, {"fbclid": "x", "utm_content": "y"}, "direct", None),
    # --- referral codes ----------------------------------------------------------------------
    (None, {"ref": "FRIEND10"}, "referral", None),
    ("https://www.facebook.com/", {"ref": "alice_2024"}, "referral", "www.facebook.com"),
    (None, {"ref": "FRIEND10", "utm_medium": "email"}, "referral", None),
    ("https://www.google.com/", {"ref": "NOPE"}, "search", "www.google.com"),
    (None, {"ref": "NOPE", "utm_medium": "email"}, "email", None),
    ("https://www.google.com/", {"ref": "FRIEND10!"}, "search", "www.google.com"),
    ("https://www.google.com/", {"ref": "friend10"}, "search", "www.google.com"),
]


def _case_id(case):
    referer, params, source, _ = case
    return f"{source}:{(referer or '-')[:60]}:{','.join(params)}"


def test_table_is_large_enough():
    assert len(CASES) >= 60


@pytest.mark.parametrize(("referer", "params", "source", "host"), CASES, ids=map(_case_id, CASES))
def test_classify_table(referer, params, source, host):
    result = classify(referer, params, OWN_HOSTS, validator)
    assert result.source == source
    assert result.host == host
    assert result.source in SOURCES


def test_every_source_is_reachable_from_the_table():
    assert {source for _, _, source, _ in CASES} == set(SOURCES)


# --- referral codes -----------------------------------------------------------------------


def test_referral_code_is_recorded_stripped():
    result = classify(None, {"ref": "  x-y  "}, (), validator)
    assert result == Referrer(source="referral", referral_code="x-y")


def test_unknown_referral_code_is_not_recorded():
    result = classify("https://www.google.com/", {"ref": "NOPE"}, (), validator)
    assert result.referral_code is None
    assert result.source == "search"


@pytest.mark.parametrize("code", ["", "   ", "a b", "x" * 65, "ümlaut", "a/b", "a\nb", "a\x00b"])
def test_malformed_referral_code_never_reaches_the_validator(code):
    calls = []

    def spy(value):
        calls.append(value)
        return True

    result = classify(None, {"ref": code}, (), spy)
    assert calls == []
    assert result.source == "direct"


def test_referral_code_surrounded_by_whitespace_is_stripped_before_validation():
    result = classify(None, {"ref": "\tFRIEND10\n"}, (), validator)
    assert result.source == "referral"
    assert result.referral_code == "FRIEND10"


def test_referral_code_of_64_chars_is_accepted():
    code = "a" * 64
    result = classify(None, {"ref": code}, (), lambda value: value == code)
    assert result.source == "referral"
    assert result.referral_code == code


def test_validator_that_raises_means_invalid_code():
    def broken(code):
        raise RuntimeError("database is down")

    result = classify("https://t.co/x", {"ref": "FRIEND10"}, (), broken)
    assert result == Referrer(source="social", host="t.co")


def test_no_validator_means_no_valid_code():
    result = classify(None, {"ref": "FRIEND10"})
    assert result.source == "direct"
    assert result.referral_code is None


def test_validator_receives_the_code():
    seen = []
    classify(None, {"ref": " FRIEND10 "}, (), lambda code: seen.append(code) or True)
    assert seen == ["FRIEND10"]


# --- campaign field -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("referer", "params", "source"),
    [
        (None, {"utm_campaign": "spring", "utm_medium": "newsletter"}, "email"),
        (None, {"utm_campaign": "spring", "ref": "FRIEND10"}, "referral"),
        ("https://www.google.de/", {"utm_campaign": "spring"}, "campaign"),
        ("https://www.google.de/", {"utm_campaign": " spring "}, "campaign"),
    ],
)
def test_campaign_is_kept_whatever_the_source(referer, params, source):
    result = classify(referer, params, (), validator)
    assert result.source == source
    assert result.campaign == "spring"


def test_campaign_is_capped_at_200_chars():
    result = classify(None, {"utm_campaign": "  " + "c" * 500})
    assert result.campaign == "c" * 200


def test_campaign_loses_control_characters():
    result = classify(None, {"utm_campaign": "spring\r\n\x00sale"})
    assert result.campaign == "springsale"


def test_blank_campaign_is_none():
    assert classify(None, {"utm_campaign": " \t "}).campaign is None
    assert classify(None, {"utm_campaign": " \t "}).source == "direct"


def test_huge_utm_values_are_capped_and_fast():
    huge = "e" * 1_000_000
    start = time.perf_counter()
    result = classify("https://" + "a" * 100_000, {"utm_campaign": huge, "utm_medium": huge})
    elapsed = time.perf_counter() - start
    assert result.source == "campaign"
    assert result.campaign == "e" * 200
    assert result.host is None
    assert elapsed < 0.5


def test_huge_utm_medium_starting_with_email_is_not_email():
    result = classify(None, {"utm_medium": "email" + " x" * 10_000})
    assert result.source == "campaign"


def test_non_string_param_values_are_ignored():
    result = classify(None, {"utm_source": 5, "gclid": None, "ref": ["FRIEND10"]}, (), validator)
    assert result == DIRECT


def test_params_none_is_tolerated():
    assert classify("https://www.bing.com/", None) == Referrer("search", "www.bing.com")


# --- bad referers ----------------------------------------------------------------------------


def test_100kb_referer_with_good_host_is_classified():
    referer = "https://www.google.com/search?q=" + "x" * 100_000
    assert classify(referer, {}) == Referrer("search", "www.google.com")


def test_100kb_host_is_direct():
    assert classify("http://" + "a" * 100_000 + ".com/", {}) == DIRECT


def test_host_over_253_chars_is_direct():
    host = ".".join(["a" * 50] * 6)  # 305 chars, each label valid
    assert len(host) > 253
    assert classify(f"https://{host}/", {}) == DIRECT
    ok = ".".join(["a" * 50] * 5)  # 254 -> still too long; 4 labels is fine
    assert classify(f"https://{ok}/", {}) == DIRECT
    short = ".".join(["a" * 50] * 4)
    assert classify(f"https://{short}/", {}).host == short


def test_label_over_63_chars_is_direct():
    assert classify("https://" + "a" * 64 + ".com/", {}) == DIRECT
    assert classify("https://" + "a" * 63 + ".com/", {}).source == "other"


def test_only_the_first_2048_chars_are_read():
    # A host that only ends after the cap cannot be read whole: it counts as no referer.
    referer = "https://" + "a." * 1100 + "google.com/"
    assert classify(referer, {}) == DIRECT


def test_latin1_decoded_bytes_do_not_raise():
    result = classify("http://\xe9\xff/", {})
    assert result.source == "other"
    assert result.host is not None
    assert result.host.isascii()
    assert result.host.startswith("xn--")


@pytest.mark.parametrize(
    "referer",
    [
        "http://\x80\x81/",
        "http://\x00/",
        "https://exa\x7fmple.com/",
        "http://\ufffd\ufffd.com/",
        "http://ex\u2100ample.com/",  # NFKC-normalises to a '/', urlsplit refuses it
        "http://" + "\xe9" * 300 + "/",
        "\xff\xfe\x00garbage",
        "https://[not-an-ip]/",
        "https://[::1]x/",
        "http://:80/",
        "http://.../",
        "https://a..b/",
    ],
)
def test_garbage_referers_are_direct(referer):
    assert classify(referer, {}) == DIRECT
    # The query string is still read.
    assert classify(referer, {"utm_campaign": "spring"}) == Referrer("campaign", campaign="spring")


def test_non_string_referer_is_direct():
    assert classify(b"https://www.google.com/", {}) == DIRECT  # type: ignore[arg-type]


# --- internal navigation ---------------------------------------------------------------------


def test_internal_referer_with_own_host_port_and_www():
    own = ("WWW.Shop.Example:8000",)
    assert classify("https://shop.example/p/1", {}, own) == DIRECT
    assert classify("https://www.shop.example:8443/", {}, own) == DIRECT


def test_internal_referer_with_utm_is_campaign_without_host():
    result = classify("https://shop.example/", {"utm_medium": "banner"}, OWN_HOSTS)
    assert result == Referrer("campaign")


def test_own_host_wins_over_the_table():
    # A shop hosted on a social-looking host must still treat its own pages as internal.
    assert classify("https://mastodon.shop/", {}, ("mastodon.shop",)) == DIRECT
    assert classify("https://mastodon.shop/", {}, ()).source == "social"


def test_own_hosts_may_be_a_single_string_or_contain_garbage():
    assert classify("https://shop.example/", {}, "shop.example") == DIRECT
    result = classify("https://shop.example/", {}, [None, "", "[bad", "shop.example"])
    assert result == DIRECT


@pytest.mark.parametrize(
    ("referer", "own_hosts", "expected"),
    [
        ("https://shop.example/cart", ["shop.example"], True),
        ("http://www.shop.example/", ["shop.example"], True),
        ("https://shop.example:8443/", ["www.shop.example:8000"], True),
        ("https://SHOP.example./", ["shop.example"], True),
        ("http://[::1]:8000/", ["[::1]:8000"], True),
        ("https://sub.shop.example/", ["shop.example"], False),
        ("https://shop.example.evil.example/", ["shop.example"], False),
        ("https://www.google.com/", ["shop.example"], False),
        ("https://shop.example/", [], False),
        (None, ["shop.example"], False),
        ("", ["shop.example"], False),
        ("ftp://shop.example/", ["shop.example"], False),
        ("android-app://shop.example", ["shop.example"], False),
        ("http://[::1", ["shop.example"], False),
    ],
)
def test_is_internal_navigation(referer, own_hosts, expected):
    assert is_internal_navigation(referer, own_hosts) is expected


# --- Referrer value object -------------------------------------------------------------------


def test_direct_constant():
    assert Referrer() == DIRECT
    assert DIRECT.as_dict() == {
        "source": "direct",
        "host": None,
        "referral_code": None,
        "campaign": None,
    }


def test_referrer_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DIRECT.source = "search"  # type: ignore[misc]


def test_as_dict_from_dict_round_trip():
    for referer, params, _, _ in CASES:
        result = classify(referer, params, OWN_HOSTS, validator)
        assert Referrer.from_dict(result.as_dict()) == result
    full = Referrer("referral", "t.co", "FRIEND10", "spring")
    assert Referrer.from_dict(full.as_dict()) == full


@pytest.mark.parametrize("data", [None, [], "search", 42, b"{}", {}, {"unrelated": 1}])
def test_from_dict_garbage_gives_direct(data):
    assert Referrer.from_dict(data) == DIRECT


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"source": "bogus"}, Referrer(source="other")),
        ({"source": ""}, Referrer(source="other")),
        ({"source": 3, "host": "t.co"}, Referrer(source="direct", host="t.co")),
        ({"source": "social", "host": 12}, Referrer(source="social")),
        ({"source": "social", "host": ""}, Referrer(source="social")),
        ({"source": "social", "host": "x" * 300}, Referrer(source="social")),
        ({"source": "social", "host": "T.CO"}, Referrer(source="social", host="t.co")),
        ({"source": "referral", "referral_code": "bad code"}, Referrer(source="referral")),
        ({"source": "referral", "referral_code": ["X"]}, Referrer(source="referral")),
        ({"campaign": "c" * 500}, Referrer(campaign="c" * 200)),
        ({"campaign": 7}, Referrer()),
        ({"campaign": "   "}, Referrer()),
    ],
)
def test_from_dict_is_tolerant(data, expected):
    assert Referrer.from_dict(data) == expected


# --- classify_request with Django's RequestFactory ------------------------------------------


@pytest.fixture(scope="module")
def request_factory():
    """A RequestFactory on the project's test settings, or minimal ones outside pytest-django."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    if not settings.configured:
        try:
            settings.INSTALLED_APPS  # noqa: B018 - loads DJANGO_SETTINGS_MODULE when set
        except (ImproperlyConfigured, ImportError):
            settings.configure(
                DEBUG=False,
                ALLOWED_HOSTS=["testserver"],
                SECRET_KEY="referrer-tests",
                USE_TZ=True,
            )
    from django.test import RequestFactory

    return RequestFactory()


def _allowed_hosts(*hosts):
    from django.test import override_settings

    return override_settings(ALLOWED_HOSTS=list(hosts), DEBUG=False)


def test_classify_request_reads_referer_and_query(request_factory):
    request = request_factory.get(
        "/landing/",
        {"utm_campaign": "spring", "utm_medium": "Newsletter"},
        HTTP_REFERER="https://mail.google.com/mail/u/0/",
    )
    with _allowed_hosts("testserver"):
        result = classify_request(request)
    assert result == Referrer("email", "mail.google.com", None, "spring")


def test_classify_request_search_without_params(request_factory):
    request = request_factory.get("/", HTTP_REFERER="https://www.google.co.uk/")
    with _allowed_hosts("testserver"):
        assert classify_request(request) == Referrer("search", "www.google.co.uk")


def test_classify_request_without_referer_is_direct(request_factory):
    with _allowed_hosts("testserver"):
        assert classify_request(request_factory.get("/")) == DIRECT


def test_classify_request_own_host_is_internal(request_factory):
    request = request_factory.get(
        "/", HTTP_HOST="shop.example:8000", HTTP_REFERER="https://www.shop.example/basket/"
    )
    with _allowed_hosts("shop.example"):
        assert classify_request(request) == DIRECT


def test_classify_request_referral_code(request_factory):
    request = request_factory.get("/", {"ref": "FRIEND10"}, HTTP_REFERER="https://t.co/x")
    with _allowed_hosts("testserver"):
        assert classify_request(request, validator) == Referrer("referral", "t.co", "FRIEND10")
        assert classify_request(request) == Referrer("social", "t.co")


def test_classify_request_last_query_value_wins_like_querydict(request_factory):
    request = request_factory.get("/?ref=nope&ref=FRIEND10")
    with _allowed_hosts("testserver"):
        assert classify_request(request, validator).referral_code == "FRIEND10"


def test_classify_request_disallowed_host_falls_back_to_host_header(request_factory):
    internal = request_factory.get(
        "/", HTTP_HOST="other.example:8080", HTTP_REFERER="https://other.example/page"
    )
    external = request_factory.get(
        "/", HTTP_HOST="other.example", HTTP_REFERER="https://www.bing.com/"
    )
    with _allowed_hosts("testserver"):
        assert classify_request(internal) == DIRECT
        assert classify_request(external) == Referrer("search", "www.bing.com")


def test_classify_request_broken_get_host_is_tolerated(request_factory):
    request = request_factory.get("/", HTTP_HOST="testserver", HTTP_REFERER="https://testserver/")

    def broken():
        raise RuntimeError("boom")

    request.get_host = broken
    with _allowed_hosts("testserver"):
        # Falls back to the raw Host header, "testserver": still internal.
        assert classify_request(request) == DIRECT
        del request.META["HTTP_HOST"]
        assert classify_request(request) == Referrer("other", "testserver")


def test_classify_request_too_many_query_fields_is_tolerated(request_factory):
    from django.test import override_settings

    query = "&".join(f"f{i}=1" for i in range(20)) + "&utm_medium=email"
    request = request_factory.get("/?" + query, HTTP_REFERER="https://www.bing.com/")
    with _allowed_hosts("testserver"), override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=5):
        assert classify_request(request) == Referrer("search", "www.bing.com")


def test_classify_request_latin1_referer(request_factory):
    # WSGI hands header bytes over decoded as latin-1.
    raw = "https://www.google.de/search?q=m\xc3\xbcsli\xff"
    request = request_factory.get("/", HTTP_REFERER=raw)
    with _allowed_hosts("testserver"):
        assert classify_request(request) == Referrer("search", "www.google.de")


def test_classify_request_on_a_bare_object():
    class Bare:
        pass

    assert classify_request(Bare()) == DIRECT
