"""A/A runs end to end: ``manage.py simulate_traffic --aa`` drives simulated visitors through
the demo shop's real middleware and views, with personalization making no difference to
buying; the admin's report, read as staff read it, must then call no winner, find the split
sound and show both groups converting alike. One run with a real advantage shows the lift's
direction. Visitor ids are random, so who lands in which group changes from run to run: the
bounds below hold whatever the draw, except with a vanishing probability (see each)."""

from __future__ import annotations

import math
import re
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tests.test_simulate_traffic import catalog  # noqa: F401  (the demo catalog fixture)

pytestmark = pytest.mark.django_db

VISITORS = 100
DAYS = 3
# |difference of rates| / its standard error under "no difference": beyond 4 with a chance of
# about 6 in 100,000 per run when both groups convert alike.
MAX_Z = 4.0


@pytest.fixture
def shop(catalog, settings) -> Client:  # noqa: F811
    """The demo shop holding out half its visitors, with a test planned to detect a tripling
    of the conversion rate: runs of a hundred visitors then reach their planned sample, so
    the interval decides the verdict rather than the sample gate. Returns a staff client."""
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "CONTROL_GROUP_PERCENT": 50,
        "REPORT_MDE": 2.0,
        "REPORT_MIN_VISITORS": 20,
    }
    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw"))
    return staff


def simulate(seed: int, **options: Any) -> str:
    out = StringIO()
    call_command("simulate_traffic", visitors=VISITORS, days=DAYS, seed=seed, stdout=out, **options)
    return out.getvalue()


def read_report(staff: Client) -> tuple[dict[str, Any], str]:
    """The report of the default period (the last 30 days) as JSON and as the admin page."""
    url = reverse("admin:personalization_report")
    data = staff.get(url, {"format": "json"}).json()
    page = staff.get(url).content.decode()
    return data, page


def page_verdict(page: str) -> tuple[str, str]:
    """(verdict, lift colour: "up", "down" or "") as the page shows them."""
    verdict = re.search(r'id="pzn-verdict" data-verdict="([^"]+)"', page)
    # The lift card's figure ("–" while control has no conversion to compare with).
    lift = re.search(
        r'<section class="pzn-card pzn-lift"[^>]*>\s*<h3[^>]*>[^<]*</h3>\s*'
        r'<div class="pzn-big(?: pzn-(up|down))?">[^<]*</div>',
        page,
    )
    assert verdict and lift, "the page shows no verdict or no lift"
    return verdict.group(1), lift.group(1) or ""


def z_score(data: dict[str, Any]) -> float:
    p, c = data["personalized"], data["control"]
    x1, n1, x2, n2 = p["converted_visitors"], p["visitors"], c["converted_visitors"], c["visitors"]
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return abs(x1 / n1 - x2 / n2) / se if se else 0.0


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_an_a_a_run_calls_no_winner(shop, seed):
    output = simulate(seed, aa=True)
    assert "This was an A/A run" in output
    assert "Rebuilt the report's roll-ups" in output
    data, page = read_report(shop)
    assert data["source"] == "rollups"

    personalized, control = data["personalized"], data["control"]
    # Every simulated visitor saw content, in one group only, split about half and half.
    assert personalized["visitors"] + control["visitors"] == VISITORS
    assert data["excluded_visitors"] == 0
    # The sample-ratio check sees the configured half: its verdict follows its p-value, and the
    # observed share stays within 5 standard errors of 0.5 (the alarm itself, at p < 0.001,
    # goes off by chance once in a thousand runs, so a run is not failed for it).
    srm = data["srm"]
    assert srm["expected_control_share"] == 0.5
    assert srm["observed_control_share"] == pytest.approx(control["visitors"] / VISITORS, abs=1e-3)
    assert srm["ok"] is (srm["p_value"] >= 0.001)
    assert min(personalized["visitors"], control["visitors"]) >= 25
    assert personalized["converted_visitors"] + control["converted_visitors"] > 0

    # No winner, and an always-valid interval that includes no difference (it excludes it
    # in about 1 run in 3,000 of this size when the groups convert alike).
    assert data["verdict"] in ("no-difference-yet", "not-enough-data")
    low, high = data["lift"]["ci95"] or (-math.inf, math.inf)
    assert low <= 0 <= high
    # Both rates within a sane band of each other.
    assert z_score(data) < MAX_Z
    # The page says the same, in neutral colours.
    assert page_verdict(page) == (data["verdict"], "")
    assert 'id="pzn-srm"' not in page


def test_a_run_with_an_advantage_shows_its_direction(shop):
    output = simulate(21, advantage=3.0)
    assert "This lift is simulated" in output
    data, page = read_report(shop)
    personalized, control = data["personalized"], data["control"]
    assert personalized["conversion_rate"] > control["conversion_rate"]
    relative = data["lift"]["relative"]
    # No ratio while control has no conversion (a few runs in a hundred at this size).
    assert relative > 0 if control["converted_visitors"] else relative is None
    assert data["probability_better"] > 0.9
    assert data["verdict"] != "control-wins"
    verdict, tone = page_verdict(page)
    assert verdict == data["verdict"]
    assert tone == ("up" if verdict == "personalization-wins" else "")
