"""Helpers for the DEBUG-only "pretend to come from" feature of the demo shop."""

from __future__ import annotations

import importlib.util

SESSION_KEY = "demo_pretend_ip"

COUNTRY_NAMES = {
    "AT": "Austria",
    "AU": "Australia",
    "BE": "Belgium",
    "BR": "Brazil",
    "CA": "Canada",
    "CH": "Switzerland",
    "CN": "China",
    "CZ": "Czechia",
    "DE": "Germany",
    "DK": "Denmark",
    "ES": "Spain",
    "FI": "Finland",
    "FR": "France",
    "GB": "United Kingdom",
    "IE": "Ireland",
    "IN": "India",
    "IT": "Italy",
    "JP": "Japan",
    "NL": "Netherlands",
    "NO": "Norway",
    "NZ": "New Zealand",
    "PL": "Poland",
    "PT": "Portugal",
    "SE": "Sweden",
    "US": "United States",
}


def demo_ips() -> dict[str, str]:
    """``{country code: pretend IP}`` from ``personalization.testutils.DEMO_IPS``.

    Empty when the personalization app does not ship its test utilities.
    """
    if importlib.util.find_spec("personalization.testutils") is None:
        return {}
    from personalization.testutils import DEMO_IPS

    return dict(DEMO_IPS)


def country_choices() -> list[tuple[str, str, str]]:
    """``[(code, country name, ip), ...]`` sorted by country name."""
    rows = [(code, COUNTRY_NAMES.get(code, code), ip) for code, ip in demo_ips().items()]
    return sorted(rows, key=lambda row: row[1])
