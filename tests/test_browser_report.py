"""The conversion report in a real Chromium: staff log in to the admin, read the figures,
verdict, sample-ratio alarm and charts, open the single-look figures, switch periods, and
download the CSV; the figures come from the daily roll-ups."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from personalization.models import Exposure
from tests.rows import banner, purchase
from tests.test_browser import ARTIFACTS, page, retrying  # noqa: F401  (the page fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop_month() -> None:
    """300 personalized visitors (30 ordered, 45.00 each) and 200 control visitors (10
    ordered, 30.00 each) over the last 20 days, rolled up."""
    from personalization.models import Conversion, Exposure
    from personalization.reports import rollups

    now = timezone.now()
    exposures, orders = [], []
    for group, visitors, buyers, price in ((False, 300, 30, "45.00"), (True, 200, 10, "30.00")):
        for n in range(visitors):
            vid = f"{'c' if group else 'p'}{n}"
            at = now - dt.timedelta(days=n % 20, hours=1)
            exposures.append(banner(vid, control=group, at=at, label="Winter <b>sale</b>"))
            if n < buyers:
                orders.append(
                    purchase(vid, control=group, at=at + dt.timedelta(minutes=30), revenue=price)
                )
    Exposure.objects.bulk_create(exposures)
    Conversion.objects.bulk_create(orders)
    rollups.refresh()
    get_user_model().objects.create_user("boss", "boss@example.com", "pw", is_staff=True,
                                         is_superuser=True)  # fmt: skip


def test_staff_read_the_report_its_charts_and_download_the_csv(
    page: Any,  # noqa: F811
    shop_month: None,
    settings: Any,
) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    # The shop holds out 10%, as most do (the page fixture holds out nobody).
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": 10}
    report_url = reverse("admin:personalization_report")
    page.goto(f"/admin/login/?next={report_url}")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"**{report_url}")

    expect(page.locator("h1")).to_contain_text("Conversion report")
    expect(page.locator("section.pzn-personalized .pzn-big")).to_have_text("10.00%")
    expect(page.locator("section.pzn-control .pzn-big")).to_have_text("5.00%")
    expect(page.locator("section.pzn-personalized")).to_contain_text("30 of 300 visitors")
    expect(page.locator(".pzn-source")).to_contain_text("Daily roll-ups")
    # The content's name is shown as text, never as markup.
    expect(page.get_by_text("Winter <b>sale</b>").first).to_be_visible()
    charts = page.locator("svg.pzn-chart[role=img]")
    assert charts.count() >= 2
    for index in range(charts.count()):
        box = charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 80
    # 200 of 500 visitors in control where the setting holds out 10%: the split is broken,
    # and the page says so before anything else.
    alert = page.locator("#pzn-srm[role=alert]")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Sample ratio mismatch")
    expect(alert).to_contain_text("The control group is 40.0% of the visitors")
    # One verdict; the lift is not coloured as a win next to it.
    verdict = page.locator("#pzn-verdict")
    expect(verdict).to_have_attribute("data-verdict", "not-enough-data")
    expect(verdict).to_contain_text("Not enough data yet")
    expect(verdict).to_contain_text("more visitors are needed")
    lift = page.locator("section.pzn-lift .pzn-big")
    expect(lift).to_have_text("+100.0%")
    expect(lift).not_to_have_class(re.compile(r"pzn-(up|down)"))
    good = page.evaluate(
        "getComputedStyle(document.querySelector('.pzn-report')).getPropertyValue('--pzn-good')"
    )
    assert lift.evaluate("node => getComputedStyle(node).color") != good.strip()
    expect(page.locator("section.pzn-lift")).to_contain_text("Bayesian probability")
    expect(page.locator("#pzn-clicks")).to_contain_text("A correlation, not an effect")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)

    # The single-look figures, on request and labelled as such.
    page.get_by_role("link", name="Show the fixed-horizon figures").click()
    page.wait_for_url("**view=fixed*")
    fixed = page.locator("#pzn-fixed-horizon")
    expect(fixed).to_be_visible()
    expect(fixed).to_contain_text("valid for a single planned look only")
    expect(page.locator("#pzn-verdict")).to_have_attribute("data-verdict", "not-enough-data")
    fixed.screenshot(path=str(ARTIFACTS / "report-fixed-horizon.png"))

    page.get_by_role("link", name="Last 7 days").click()
    page.wait_for_url("**start=*")
    first_day = timezone.localdate() - dt.timedelta(days=6)
    assert f"start={first_day.isoformat()}" in page.url
    since = timezone.make_aware(dt.datetime.combine(first_day, dt.time.min))
    week = retrying(
        lambda: (
            Exposure.objects.filter(is_control=False, created_at__gte=since)
            .values("visitor_id")
            .distinct()
            .count()
        )
    )
    assert 90 <= week <= 120
    expect(page.locator("section.pzn-personalized")).to_contain_text(f"of {week} visitors")

    csv_href = page.locator("a[download]").get_attribute("href")
    response = page.request.get(report_url + csv_href)
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/csv")
    text = response.text()
    assert "personalized" in text.lower()
    rows = list(csv.reader(io.StringIO(text)))
    first = {row[0]: row[1:] for row in rows if row}
    assert first["verdict"][0] == "not-enough-data"
    assert first["srm"][0] == "0.1"


def test_the_report_sends_anonymous_visitors_to_the_login(page: Any) -> None:  # noqa: F811
    report_url = reverse("admin:personalization_report")
    page.goto(report_url)
    assert "/admin/login/" in page.url
    assert retrying(lambda: get_user_model().objects.count()) == 0
