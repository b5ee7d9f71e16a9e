"""Device class of a visit (mobile, tablet, desktop) from Client Hints and the user agent."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from .bots import MAX_USER_AGENT_LENGTH

MOBILE = "mobile"
TABLET = "tablet"
DESKTOP = "desktop"
DEVICES = (MOBILE, TABLET, DESKTOP)


@functools.lru_cache(maxsize=4096)
def _from_user_agent(user_agent: str) -> str:
    from user_agents import parse

    try:
        agent = parse(user_agent)
    except Exception:
        return ""
    if agent.is_tablet:
        return TABLET
    if agent.is_mobile:
        return MOBILE
    if agent.is_pc:
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
