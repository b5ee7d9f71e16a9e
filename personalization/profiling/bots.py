"""Crawler detection by user agent, with the maintained crawlerdetect patterns."""

from __future__ import annotations

import functools

MAX_USER_AGENT_LENGTH = 512


@functools.lru_cache(maxsize=1)
def _detector():  # type: ignore[no-untyped-def]
    from crawlerdetect import CrawlerDetect

    return CrawlerDetect()


@functools.lru_cache(maxsize=2048)
def _is_crawler(user_agent: str) -> bool:
    return bool(_detector().isCrawler(user_agent))


def is_bot(user_agent: str | None) -> bool:
    """True for crawler user agents.

    A missing user agent is not taken for a bot: test clients and some privacy tools send none,
    and treating them as bots would silently switch tracking off for them.
    """
    if not user_agent or not user_agent.strip():
        return False
    return _is_crawler(user_agent[:MAX_USER_AGENT_LENGTH])
