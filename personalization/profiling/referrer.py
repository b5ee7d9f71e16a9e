"""Classifies how a visit arrived: direct, search, social, email, referral, campaign or other."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "DIRECT",
    "SOURCES",
    "Referrer",
    "classify",
    "classify_request",
    "is_internal_navigation",
]

SOURCES = ("direct", "search", "social", "email", "referral", "campaign", "other")

# Only this much of a Referer is looked at; the rest cannot change the host.
MAX_REFERER_LENGTH = 2048
# DNS limit on a host name.
MAX_HOST_LENGTH = 253
# Longest query-string value kept (utm_campaign) or looked at.
MAX_PARAM_LENGTH = 200
MAX_REFERRAL_CODE_LENGTH = 64

_REFERRAL_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# ASCII host after IDNA conversion: dot-separated labels of 1..63 characters.
_HOST_RE = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}")
_PORT_RE = re.compile(r"[0-9]{0,5}")
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_EMAIL_MEDIUMS = frozenset({"email", "e-mail", "newsletter", "mail"})
_CAMPAIGN_PARAMS = ("utm_source", "utm_medium", "utm_campaign")
_CLICK_ID_PARAMS = ("gclid", "gbraid", "wbraid", "msclkid", "dclid", "yclid")

_ANDROID_APPS = {
    "com.google.android.gm": "email",
    "com.google.android.googlequicksearchbox": "search",
    "com.facebook.katana": "social",
    "com.instagram.android": "social",
    "com.twitter.android": "social",
    "com.linkedin.android": "social",
}

# Hosts matched together with all their subdomains (see _matches_suffix).
_WEBMAIL_HOSTS = frozenset(
    {
        "mail.google.com",
        "inbox.google.com",
        "outlook.live.com",
        "outlook.office.com",
        "outlook.office365.com",
        "mail.yahoo.com",
        "mail.yahoo.co.jp",
        "mail.aol.com",
        "mail.proton.me",
        "mail.protonmail.com",
        "e.mail.ru",
        "mail.zoho.com",
        "mail.zoho.eu",
        "mail.zoho.in",
        "mail.gmx.net",
        "mail.gmx.com",
        "gmx.net",
        "gmx.de",
        "web.de",
        "navigator.web.de",
        "app.fastmail.com",
        "fastmail.com",
        "mail.com",
        "mail.163.com",
        "mail.qq.com",
        # Webmail of search portals, which would otherwise count as search.
        "mail.naver.com",
        "mail.daum.net",
        "email.seznam.cz",
    }
)
_YANDEX_TLDS = r"(?:ru|com|by|kz|ua|uz|az|ee|lt|lv|md|tj|tm|fr|com\.tr|com\.am|com\.ge|co\.il)"
_WEBMAIL_RE = re.compile(rf"mail\.yandex\.{_YANDEX_TLDS}")

_SEARCH_HOSTS = frozenset(
    {
        "bing.com",
        "duckduckgo.com",
        "search.yahoo.com",
        "yahoo.co.jp",
        "baidu.com",
        "ya.ru",
        "ecosia.org",
        "ask.com",
        "search.aol.com",
        "naver.com",
        "seznam.cz",
        "qwant.com",
        "startpage.com",
        "search.brave.com",
        "sogou.com",
        "so.com",
        "daum.net",
        "kagi.com",
        "yep.com",
        "mojeek.com",
        "petalsearch.com",
    }
)
# Brands on many country domains. The brand must be a whole label followed by something shaped
# like a public suffix, so googleusercontent.com, notgoogle.com and google.evil.example miss.
_COUNTRY_SUFFIX = r"(?:com|co\.[a-z]{2}|com\.[a-z]{2}|[a-z]{2})"
_SEARCH_RE = re.compile(rf"(?:^|\.)(?:google\.{_COUNTRY_SUFFIX}|yandex\.{_YANDEX_TLDS})\Z")

_SOCIAL_HOSTS = frozenset(
    {
        "facebook.com",
        "fb.com",
        "fb.me",
        "messenger.com",
        "instagram.com",
        "t.co",
        "twitter.com",
        "x.com",
        "linkedin.com",
        "lnkd.in",
        "pin.it",
        "reddit.com",
        "youtube.com",
        "youtu.be",
        "tiktok.com",
        "snapchat.com",
        "tumblr.com",
        "vk.com",
        "ok.ru",
        "weibo.com",
        "weibo.cn",
        "threads.net",
        "threads.com",
        "bsky.app",
        "mastodon.social",
        "whatsapp.com",
        "t.me",
        "telegram.org",
        "telegram.me",
        "discord.com",
        "discord.gg",
        "quora.com",
        "news.ycombinator.com",
        "xing.com",
        "line.me",
    }
)
_SOCIAL_RE = re.compile(rf"(?:^|\.)pinterest\.{_COUNTRY_SUFFIX}\Z")


@dataclass(frozen=True, slots=True)
class Referrer:
    """Where a visit came from, as recorded on its landing request."""

    source: str = "direct"
    # Host of the landing Referer, lower-case and without port; None without a usable Referer
    # and for internal navigation. For android-app:// referrers, the app's package name.
    host: str | None = None
    # A customer referral code (?ref=CODE) that was valid on landing.
    referral_code: str | None = None
    # utm_campaign of the landing URL, whatever the source.
    campaign: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "source": self.source,
            "host": self.host,
            "referral_code": self.referral_code,
            "campaign": self.campaign,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Referrer:
        """Rebuild from :meth:`as_dict` output; bad or missing values fall back to defaults."""
        if not isinstance(data, Mapping):
            return DIRECT
        source = data.get("source")
        if not isinstance(source, str):
            source = "direct"
        elif source not in SOURCES:
            source = "other"
        host = data.get("host")
        if not isinstance(host, str) or not host or len(host) > MAX_HOST_LENGTH:
            host = None
        else:
            host = host.lower()
        code = data.get("referral_code")
        if not isinstance(code, str) or not _REFERRAL_CODE_RE.fullmatch(code):
            code = None
        return cls(
            source=source,
            host=host,
            referral_code=code,
            campaign=_clean_param(data.get("campaign")),
        )


DIRECT = Referrer()


def _clean_param(value: Any) -> str | None:
    """A query-string value without control characters, stripped and capped; None if empty."""
    if not isinstance(value, str):
        return None
    value = _CONTROL_CHARS_RE.sub("", value[: MAX_PARAM_LENGTH * 4]).strip()
    return value[:MAX_PARAM_LENGTH].rstrip() or None


def _raw_param(params: Any, name: str) -> str | None:
    try:
        value = params.get(name)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def _get_param(params: Any, name: str) -> str | None:
    return _clean_param(_raw_param(params, name))


def _referral_code(value: str | None) -> str | None:
    """A well-formed referral code (stripped), or None; says nothing about its validity."""
    if value is None:
        return None
    value = value[:MAX_PARAM_LENGTH].strip()
    return value if _REFERRAL_CODE_RE.fullmatch(value) else None


def _normalize_host(hostport: str) -> str | None:
    """Lower-case host of a ``host[:port]`` string (userinfo allowed), or None when invalid."""
    hostport = hostport.rpartition("@")[2]
    if hostport.startswith("["):
        address, bracket, port = hostport[1:].partition("]")
        if not bracket or (port and not (port[0] == ":" and _PORT_RE.fullmatch(port[1:]))):
            return None
        try:
            return ipaddress.IPv6Address(address).compressed
        except ValueError:
            return None
    host, _, port = hostport.partition(":")
    if not _PORT_RE.fullmatch(port):
        return None
    host = host.rstrip(".")
    if not host or len(host) > MAX_HOST_LENGTH:
        return None
    if host.isascii():
        host = host.lower()
    else:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except (UnicodeError, ValueError):
            return None
        if len(host) > MAX_HOST_LENGTH:
            return None
    if not _HOST_RE.fullmatch(host):
        return None
    return host


def _parse_referer(referer: Any) -> tuple[str, str, str] | None:
    """(scheme, host, path) of an http(s) or android-app Referer, or None when unusable."""
    if not isinstance(referer, str):
        return None
    referer = referer[:MAX_REFERER_LENGTH].strip()
    if not referer:
        return None
    try:
        parts = urlsplit(referer)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "android-app"):
        return None
    host = _normalize_host(parts.netloc)
    if host is None:
        return None
    return scheme, host, parts.path


def _without_www(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def _own_hosts(own_hosts: Any) -> frozenset[str]:
    if not own_hosts:
        return frozenset()
    if isinstance(own_hosts, str):
        own_hosts = (own_hosts,)
    normalized = set()
    for own in own_hosts:
        host = _normalize_host(own) if isinstance(own, str) else None
        if host:
            normalized.add(_without_www(host))
    return frozenset(normalized)


def _matches_suffix(host: str, hosts: frozenset[str]) -> bool:
    """True when ``host`` or one of its parent domains is in ``hosts``."""
    while True:
        if host in hosts:
            return True
        dot = host.find(".")
        if dot < 0:
            return False
        host = host[dot + 1 :]


def _classify_host(host: str, path: str) -> str:
    first_label = host.partition(".")[0]
    if (
        first_label == "webmail"
        or _matches_suffix(host, _WEBMAIL_HOSTS)
        or _WEBMAIL_RE.fullmatch(host)
        or (host == "www.icloud.com" and path.startswith("/mail"))
    ):
        return "email"
    if _matches_suffix(host, _SEARCH_HOSTS) or _SEARCH_RE.search(host):
        return "search"
    if first_label == "mastodon" or _matches_suffix(host, _SOCIAL_HOSTS) or _SOCIAL_RE.search(host):
        return "social"
    return "other"


def classify(
    referer: str | None,
    params: Mapping[str, str],
    own_hosts: Collection[str] = (),
    is_valid_referral_code: Callable[[str], bool] | None = None,
) -> Referrer:
    """Classify a landing request from its Referer header and query parameters.

    ``params`` is a mapping such as ``request.GET``; ``own_hosts`` are this site's hosts, so
    that a Referer from the site itself (a reopened tab) counts as direct. Never raises.
    """
    if params is None:
        params = {}
    parsed = _parse_referer(referer)
    host: str | None = None
    host_source = "direct"
    if parsed is not None:
        scheme, host, path = parsed
        if scheme == "android-app":
            host_source = _ANDROID_APPS.get(host, "other")
        elif _without_www(host) in _own_hosts(own_hosts):
            host = None
        else:
            host_source = _classify_host(host, path)

    campaign = _get_param(params, "utm_campaign")

    if is_valid_referral_code is not None:
        code = _referral_code(_raw_param(params, "ref"))
        if code is not None:
            try:
                valid = bool(is_valid_referral_code(code))
            except Exception:
                valid = False
            if valid:
                return Referrer("referral", host, code, campaign)

    medium = _get_param(params, "utm_medium")
    if medium is not None and medium.lower() in _EMAIL_MEDIUMS:
        return Referrer("email", host, None, campaign)

    if any(_get_param(params, name) for name in (*_CAMPAIGN_PARAMS, *_CLICK_ID_PARAMS)):
        return Referrer("campaign", host, None, campaign)

    return Referrer(host_source, host, None, campaign)


def classify_request(
    request: Any, is_valid_referral_code: Callable[[str], bool] | None = None
) -> Referrer:
    """Classify a Django request from its Referer, query string and own host. Never raises.

    The own host comes from ``request.get_host()``; when that fails (DisallowedHost or
    anything else), from the raw Host header.
    """
    meta = getattr(request, "META", None)
    if not isinstance(meta, Mapping):
        meta = {}
    own_hosts: list[str] = []
    try:
        own_hosts.append(request.get_host())
    except Exception:
        raw_host = meta.get("HTTP_HOST")
        if isinstance(raw_host, str):
            own_hosts.append(raw_host)
    try:
        params = request.GET
    except Exception:  # e.g. TooManyFieldsSent
        params = {}
    return classify(meta.get("HTTP_REFERER"), params, own_hosts, is_valid_referral_code)


def is_internal_navigation(referer: str | None, own_hosts: Collection[str]) -> bool:
    """True when the Referer is a page of this same site.

    That is, its host equals an own host, ignoring port and a leading 'www.'.
    """
    parsed = _parse_referer(referer)
    if parsed is None or parsed[0] == "android-app":
        return False
    return _without_www(parsed[1]) in _own_hosts(own_hosts)
