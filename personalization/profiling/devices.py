"""Device class of a visit (mobile, tablet, desktop) from Client Hints and the user agent."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .bots import MAX_USER_AGENT_LENGTH

if TYPE_CHECKING:
    from ua_parser import Result

MOBILE = "mobile"
TABLET = "tablet"
DESKTOP = "desktop"
DEVICES = (MOBILE, TABLET, DESKTOP)

# The families below are ua-parser's (its regexes.yaml); the rules that use them are those
# the device classes have always been told by, so a visitor's stored class does not change.
TABLET_DEVICE_FAMILIES = frozenset(
    {
        "iPad",
        "BlackBerry Playbook",
        "Blackberry Playbook",
        "Kindle",
        "Kindle Fire",
        "Kindle Fire HD",
        "Galaxy Tab",
        "Xoom",
        "Dell Streak",
    }
)
MOBILE_DEVICE_FAMILIES = frozenset(
    {
        "iPhone",
        "iPod",
        "Generic Smartphone",
        "Generic Feature Phone",
        "PlayStation Vita",
        "iOS-Device",
    }
)
MOBILE_BROWSER_FAMILIES = frozenset(
    {
        "IE Mobile",
        "Opera Mobile",
        "Opera Mini",
        "Chrome Mobile",
        "Chrome Mobile WebView",
        "Chrome Mobile iOS",
    }
)
MOBILE_OS_FAMILIES = frozenset(
    {
        "Windows Phone",
        "Windows Phone OS",
        "Symbian OS",
        "Bada",
        "Windows CE",
        "Windows Mobile",
        "Maemo",
    }
)
PC_OS_FAMILIES = frozenset({"Windows 95", "Windows 98", "Solaris"})


def warm_up() -> None:
    """Load ua-parser's rules now (about a quarter of a second, once per process): the
    middleware calls this when the process starts, so no visitor's request waits for it."""
    _from_user_agent("Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0")


@functools.lru_cache(maxsize=4096)
def _from_user_agent(user_agent: str) -> str:
    import ua_parser

    try:
        # The global parser: the compiled resolver of ua-parser[regex] where it is installed,
        # behind ua-parser's own cache.
        result = ua_parser.parse(user_agent)
    except Exception:
        return ""
    return classify(result, user_agent)


def classify(result: Result, user_agent: str) -> str:
    """The device class of a parsed user agent: ``tablet`` before ``mobile`` before
    ``desktop``; ``""`` for anything else (most crawlers, TVs, consoles, tools)."""
    device = result.device.family if result.device else "Other"
    os_family = result.os.family if result.os else "Other"
    os_version = (
        ".".join(
            part for part in (result.os.major, result.os.minor, result.os.patch) if part is not None
        )
        if result.os
        else ""
    )
    browser = result.user_agent.family if result.user_agent else "Other"

    # Tablet.
    tablet = (
        device in TABLET_DEVICE_FAMILIES
        # Android tablets leave "Mobile" out of the user agent; Firefox, whose browser family
        # is "Firefox Mobile" on both, says "(Android 14; Tablet; rv:…)" or "Mobile;" instead.
        or (
            os_family == "Android"
            and (
                ("Mobile Safari" not in user_agent and browser != "Firefox Mobile")
                or "; Tablet;" in user_agent
            )
        )
        or (os_family == "Windows" and os_version.startswith("RT"))
        or (os_family == "Firefox OS" and "Mobile" not in browser)
    )
    if tablet:
        return TABLET

    # Mobile.
    if (
        device in MOBILE_DEVICE_FAMILIES
        or browser in MOBILE_BROWSER_FAMILIES
        or os_family in ("Android", "Firefox OS")
        or (os_family == "BlackBerry OS" and device != "Blackberry Playbook")
        or os_family in MOBILE_OS_FAMILIES
        or "J2ME" in user_agent
        or "MIDP" in user_agent
        or "iPhone;" in user_agent
        or "Googlebot-Mobile" in user_agent
        or (device == "Spider" and "Mobile" in browser)
        or ("NokiaBrowser" in user_agent and "Mobile" in user_agent)
    ):
        return MOBILE

    # Desktop: Windows, macOS, Chrome OS and Linux on X11.
    if (
        "Windows NT" in user_agent
        or os_family in PC_OS_FAMILIES
        or (os_family == "Windows" and os_version == "ME")
        or (os_family == "Mac OS X" and "Silk" not in user_agent)
    ):
        return DESKTOP
    if "Maemo" in user_agent:
        return ""
    if "Chrome OS" in os_family or ("Linux" in user_agent and "X11" in user_agent):
        return DESKTOP
    return ""


def device_class(meta: Mapping[str, str]) -> str:
    """``mobile``, ``tablet``, ``desktop``, or ``""`` when it cannot be told.

    ``Sec-CH-UA-Mobile: ?1`` (sent by Chromium browsers) settles "mobile" without parsing.
    """
    if meta.get("HTTP_SEC_CH_UA_MOBILE", "").strip() == "?1":
        return MOBILE
    user_agent = meta.get("HTTP_USER_AGENT", "")
    if not user_agent:
        return ""
    return _from_user_agent(user_agent[:MAX_USER_AGENT_LENGTH])
