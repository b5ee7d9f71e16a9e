"""The conversion report's admin page, its CSV, and who may see them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils.html import escape

from personalization.models import Conversion, Event, Exposure, Visitor
from personalization.reports import charts, stats
from personalization.reports.views import neutralize
from tests.rows import purchase

pytestmark = pytest.mark.django_db

SHOWN_AT = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
PERIOD = {"start": "2026-11-01", "end": "2026-11-02"}
EVIL_PLACEMENT = '=HYPERLINK("http://evil")'
EVIL_CONTENT = "-2+3"
EVIL_LABEL = "<script>alert(1)</script>"
EVIL_SEGMENT = "@cmd"
EVIL_SOURCE = "+SUM(A1)"
HTML_PLACEMENT = "<i>hero</i>"
SVG_TAGS = {"svg", "title", "desc", "g", "line", "polyline", "circle", "rect", "text"}


@pytest.fixture
def staff(client, clock):
    user = get_user_model().objects.create_user("boss", "boss@example.com", "pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_report"))
    client.force_login(user)
    return client


@pytest.fixture
def shop():
    """Four personalized visitors (two orders: 30 and 50) and four in control (one order: 20).

    Personalized: every one saw the home banner and recommendations; p1 clicked a
    recommendation and bought, p2 bought without clicking, p3 and p4 did not buy; p3 and p4
    also saw content whose names try to inject HTML and formulas.
    """

    def visitor(name: str, *, control: bool = False, **fields) -> Visitor:
        values = {"first_source": "search", "latest_source": "search", "country_code": "DE"}
        values.update(fields)
        return Visitor.objects.create(
            id=name,
            first_seen=SHOWN_AT,
            last_seen=SHOWN_AT,
            in_control_group=control,
            **values,
        )

    def exposure(who: Visitor, placement: str, **fields) -> Exposure:
        values = {
            "kind": Exposure.BANNER,
            "content": "banner:1",
            "content_label": "Winter sale",
            "segment": "returning",
            "is_control": who.in_control_group,
            "created_at": SHOWN_AT,
        }
        values.update(fields)
        return Exposure.objects.create(visitor=who, placement=placement, **values)

    def order(who: Visitor, number: str, total: str, hours: int) -> None:
        Conversion.objects.create(
            visitor=who,
            kind=Conversion.PURCHASE,
            goal="purchase",
            order_id=number,
            revenue=Decimal(total),
            currency="EUR",
            is_control=who.in_control_group,
            created_at=SHOWN_AT + dt.timedelta(hours=hours),
        )

    people = [visitor(f"p{n}") for n in range(1, 4)]
    people.append(visitor("p4", first_source=EVIL_SOURCE, country_code="GB"))
    for person in people:
        exposure(person, "home-hero")
        shown = exposure(
            person,
            "product-recs",
            kind=Exposure.RECOMMENDATION,
            content="strategy:trending",
            content_label="Trending now",
            segment="",
        )
        if person.id == "p1":
            Event.objects.create(visitor=person, exposure=shown, kind=Event.CLICK)
    exposure(
        people[3],
        EVIL_PLACEMENT,
        content=EVIL_CONTENT,
        content_label=EVIL_LABEL,
        segment=EVIL_SEGMENT,
    )
    exposure(people[2], HTML_PLACEMENT)
    order(people[0], "A-1", "30.00", 1)
    order(people[1], "A-2", "50.00", 2)

    control = [visitor(f"c{n}", control=True) for n in range(1, 5)]
    for person in control:
        exposure(person, "home-hero", content="default", content_label="", segment="")
    order(control[0], "A-3", "20.00", 1)
    Conversion.objects.create(
        visitor=control[1], kind=Conversion.LEAD, goal="newsletter_signup", is_control=True,
        created_at=SHOWN_AT + dt.timedelta(hours=3),
    )  # fmt: skip


def url(**params) -> str:
    from django.utils.http import urlencode

    query = urlencode(params)
    return reverse("admin:personalization_report") + (f"?{query}" if query else "")


def headline_cells(body: str, label: str) -> tuple[str, str]:
    match = re.search(
        rf'<th scope="row">{label}</th><td class="pzn-num">([^<]*)(?:<br><span class="pzn-ci">'
        r'[^<]*</span>)?</td><td class="pzn-num">([^<]*)(?:<br><span class="pzn-ci">[^<]*</span>)?'
        r"</td>",
        body,
    )
    assert match, f"no headline row {label!r}"
    return match.group(1), match.group(2)


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


# The page -----------------------------------------------------------------------------------


def test_the_report_lives_under_the_apps_admin_url():
    assert reverse("admin:personalization_report") == "/admin/personalization/report/"


def test_staff_see_the_headline_numbers_of_both_groups(staff, shop):
    response = staff.get(url(**PERIOD))
    assert response.status_code == 200
    body = response.content.decode()
    assert headline_cells(body, "Visitors") == ("4", "4")
    assert headline_cells(body, "Converted visitors") == ("2", "1")
    assert headline_cells(body, "Conversion rate") == ("50.00%", "25.00%")
    assert headline_cells(body, "Orders") == ("2", "1")
    assert headline_cells(body, "Revenue") == ("80.00", "20.00")
    assert headline_cells(body, "Average order value") == ("40.00", "20.00")
    assert headline_cells(body, "Revenue per visitor") == ("20.00", "5.00")
    # 50% against 25%: the personalized rate is twice control's.
    assert "+100.0%" in body
    lift = staff.get(url(format="json", **PERIOD)).json()["lift"]
    assert "95% CI" in body and escape(stats.format_p(lift["p_value"])) in body
    assert "p = <" not in body
    # The method, from the report itself: the always-valid one.
    assert escape(lift["method"]) in body and "always valid" in lift["method"]
    assert 'id="pzn-method"' in body and 'id="pzn-fixed-horizon"' not in body
    assert "within 7 days" in body  # the attribution window, from the report


def test_the_page_draws_both_charts_as_inline_svg_with_accessible_names(staff, shop):
    body = staff.get(url(**PERIOD)).content.decode()
    charts_found = re.findall(r"<svg [^>]*class=\"pzn-chart pzn-chart-(\w+)\"[^>]*>", body)
    assert charts_found == ["daily", "placement"]
    for tag in re.findall(r"<svg [^>]*pzn-chart[^>]*>", body):
        assert 'role="img"' in tag and 'aria-label="' in tag
    assert "<title" in body and "<polyline" in body and "<rect" in body
    # Both series, both placements; no script or stylesheet from elsewhere.
    assert body.count('class="pzn-line pzn-stroke pzn-personalized"') == 1
    assert body.count('class="pzn-line pzn-stroke pzn-control"') == 1
    assert "home-hero: personalized 50%, control 25%" in body
    # Nothing is loaded from elsewhere, and no script is the report's own: its one stylesheet.
    sources = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]*)"', body)
    ours = "/static/personalization/admin/report.css"
    assert sources and all(s.startswith("/static/admin/") or s == ours for s in sources)


def test_the_breakdowns_and_the_click_sentence(staff, shop):
    body = staff.get(url(**PERIOD)).content.decode()
    for table in ["by-placement", "by-content", "by-segment", "by-referrer", "by-country"]:
        assert f'id="pzn-{table}"' in body
    assert 'id="pzn-by-goal"' in body and "newsletter_signup" in body
    assert "Winter sale" in body and "Trending now" in body and "returning" in body
    # p1 clicked and bought (100%); p2-p4 did not click, one of three bought (33.33%).
    assert (
        "Visitors who clicked a recommendation converted at 3.0× the rate of those who did "
        "not (100.00% vs 33.33%)." in body
    )


def test_without_clicks_the_sentence_says_so(staff, shop):
    Event.objects.all().delete()
    body = staff.get(url(**PERIOD)).content.decode()
    assert "No clicks on a recommendation yet." in body
    assert "converted at" not in body


def test_the_clicked_ratio_is_captioned_as_a_correlation(staff, shop):
    body = staff.get(url(**PERIOD)).content.decode()
    clicks = body[body.index('id="pzn-clicks"') :]
    clicks = clicks[: clicks.index("</div>")]
    assert "3.0× the rate" in clicks
    assert "A correlation, not an effect" in clicks


def test_an_empty_period_renders_with_empty_charts(staff):
    response = staff.get(url(**PERIOD))
    assert response.status_code == 200
    body = response.content.decode()
    assert "No visitors in this period yet." in body
    assert "No placement was shown in this period." in body
    assert "No clicks on a recommendation yet." in body
    assert headline_cells(body, "Visitors") == ("0", "0")


def test_the_form_offers_presets_and_the_goals_recorded(staff, shop):
    body = staff.get(url(**PERIOD)).content.decode()
    today = dt.date(2026, 11, 2)  # the clock fixture's day, Berlin time
    for days in (7, 30, 90):
        start = today - dt.timedelta(days=days - 1)
        assert f"?start={start.isoformat()}&amp;end={today.isoformat()}&amp;goal=purchase" in body
    assert '<option value="purchase" selected>' in body
    assert '<option value="newsletter_signup">' in body
    assert 'value="2026-11-01"' in body and 'value="2026-11-02"' in body


def test_another_goal_changes_the_numbers(staff, shop):
    body = staff.get(url(goal="newsletter_signup", **PERIOD)).content.decode()
    assert headline_cells(body, "Converted visitors") == ("0", "1")
    assert '<option value="newsletter_signup" selected>' in body


def test_names_from_the_data_are_escaped_in_the_page_and_the_svg(staff, shop):
    body = staff.get(url(**PERIOD)).content.decode()
    assert EVIL_LABEL not in body
    assert escape(EVIL_LABEL) in body
    assert HTML_PLACEMENT not in body
    svgs = re.findall(r'<svg [^>]*class="pzn-chart.*?</svg>', body, flags=re.DOTALL)
    assert len(svgs) == 2
    placement_svg = svgs[1]
    assert escape(HTML_PLACEMENT) in placement_svg
    assert escape('=HYPERLINK("http://') in placement_svg  # quotes too: text in attributes
    for svg in svgs:
        assert set(re.findall(r"<([a-zA-Z][\w-]*)", svg)) <= SVG_TAGS


def test_the_chart_helpers_escape_what_they_are_given():
    placement = '<a href="x">"hi"</a>'
    svg = charts.placement_rate_chart(
        [
            {
                "placement": placement,
                "visitors": 10,
                "converted_visitors": 1,
                "conversion_rate": 10.0,
                "control_visitors": 5,
                "control_converted_visitors": 0,
                "control_conversion_rate": 0.0,
            }
        ]
    )
    assert placement not in svg and "<a " not in svg
    assert escape(placement) in svg
    line = charts.daily_rate_chart(
        [
            {
                "date": "<b>2026-11-01</b>",
                "personalized_visitors": 3,
                "personalized_rate": 33.33,
                "control_visitors": 0,
                "control_rate": 0.0,
            }
        ]
    )
    assert "<b>" not in line and escape("<b>2026-11-01</b>") in line
    # A day without control visitors is a gap, not a zero: no control line, one point.
    assert "pzn-line pzn-stroke pzn-control" not in line


# The verdict and what goes with it -----------------------------------------------------------


def groups(p_n: int, p_conv: int, c_n: int, c_conv: int) -> None:
    """Visitors with one exposure each on the first day of PERIOD; the first ``*_conv`` of
    each group order an hour later."""
    exposures, orders = [], []
    for is_control, n, converted in ((False, p_n, p_conv), (True, c_n, c_conv)):
        for number in range(n):
            vid = f"{'c' if is_control else 'p'}-{number}"
            fields = {
                "placement": "home-hero",
                "kind": Exposure.BANNER,
                "content": "default" if is_control else "banner:1",
                "content_label": "" if is_control else "Winter sale",
            }
            exposures.append(
                Exposure(visitor_id=vid, is_control=is_control, created_at=SHOWN_AT, **fields)
            )
            if number < converted:
                orders.append(
                    purchase(
                        vid,
                        control=is_control,
                        at=SHOWN_AT + dt.timedelta(hours=1),
                        revenue="10.00",
                    )
                )
    Exposure.objects.bulk_create(exposures)
    Conversion.objects.bulk_create(orders)


@pytest.fixture
def half_held_out(settings):
    """A 50% holdout and a planned lift of +100%: verdicts within a few hundred visitors."""
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "CONTROL_GROUP_PERCENT": 50,
        "REPORT_MDE": 1.0,
    }


def verdict_of(body: str) -> str:
    match = re.search(
        r'<section class="pzn-verdict pzn-verdict-(\w+)"[^>]*data-verdict="([^"]+)"', body
    )
    assert match, "no verdict on the page"
    return match.group(2)


def lift_tone(body: str) -> str:
    match = re.search(
        r'<div class="pzn-big( pzn-(up|down))?">[^<]*</div>\s*<p><span class="pzn-nowrap">95% CI',
        body,
    )
    assert match, "no lift on the page"
    return match.group(2) or ""


@pytest.mark.parametrize(
    ("counts", "verdict", "tone", "title"),
    [
        ((200, 60, 200, 20), "personalization-wins", "up", "Personalization wins"),
        ((200, 20, 200, 60), "control-wins", "down", "The control group wins"),
        ((300, 100, 300, 100), "no-difference-yet", "", "No difference shown yet"),
        ((20, 5, 20, 2), "not-enough-data", "", "Not enough data yet"),
    ],
)
def test_one_verdict_and_the_lift_is_coloured_by_it_alone(
    staff, half_held_out, counts, verdict, tone, title
):
    groups(*counts)
    data = staff.get(url(format="json", **PERIOD)).json()
    assert data["verdict"] == verdict
    body = staff.get(url(**PERIOD)).content.decode()
    assert verdict_of(body) == verdict
    assert f'<h2 id="pzn-verdict-title">{title}</h2>' in body
    assert lift_tone(body) == tone
    assert body.count('class="pzn-verdict ') == 1  # one verdict, nothing else says otherwise
    # The interval and p-value shown are the always-valid ones.
    low, high = data["lift"]["ci95"]
    assert f"{low * 100:+,.1f}%".replace("-", "−") in body
    assert f"{high * 100:+,.1f}%".replace("-", "−") in body
    assert escape(stats.format_p(data["lift"]["p_value"])) in body


def test_a_significant_single_look_is_not_a_verdict(staff):
    """388 of 9,000 against 30 of 1,000: p = 0.049 for a single look, whose interval still
    includes no difference; the always-valid interval is far wider. Neutral, not green; the
    single-look figures are shown on request, labelled as valid for one planned look."""
    groups(9000, 388, 1000, 30)
    data = staff.get(url(format="json", **PERIOD)).json()
    assert data["lift"]["fixed_horizon"]["p_value"] < 0.05
    assert data["verdict"] == "not-enough-data"
    body = staff.get(url(**PERIOD)).content.decode()
    assert verdict_of(body) == "not-enough-data"
    assert lift_tone(body) == ""
    assert "+43.7%" in body
    assert "Unlikely to be chance" not in body and "p = 0.049" not in body
    assert 'class="pzn-verdict pzn-verdict-neutral"' in body

    # The single-look figures only on request, and labelled for what they are.
    fixed = data["lift"]["fixed_horizon"]
    assert 'id="pzn-fixed-horizon"' not in body
    assert "view=fixed" in body  # the link to them
    body = staff.get(url(view="fixed", **PERIOD)).content.decode()
    box = body[body.index('id="pzn-fixed-horizon"') :]
    box = box[: box.index("</section>")]
    assert "valid for a single planned look only" in box
    assert "p = 0.049" in box and "−0.3% to +107.1%" in box
    assert escape(fixed["method"]) in box
    # The verdict stays the always-valid one.
    assert verdict_of(body) == "not-enough-data" and lift_tone(body) == ""


def test_not_enough_data_says_how_many_visitors_and_days_are_missing(staff, half_held_out):
    groups(20, 5, 20, 2)  # 40 visitors on one of the period's two days
    data = staff.get(url(format="json", **PERIOD)).json()
    needed = data["visitors_needed"]
    assert needed > 0
    body = staff.get(url(**PERIOD)).content.decode()
    sentence = re.search(r'<p id="pzn-needed">(.*?)</p>', body, flags=re.DOTALL).group(1)
    planned = data["planned_visitors"]
    assert f"Detecting the planned lift of 100% takes about {planned['personalized']:,}" in sentence
    per_day = 40 / 2
    days = -(-needed // per_day)
    assert f"About {needed:,} more visitors are needed" in sentence
    assert (
        f"({per_day:.0f} visitors a day in this period), that is about {days:,.0f} more days"
        in sentence
    )


def test_days_needed_count_only_the_days_already_begun(staff, half_held_out):
    groups(20, 5, 20, 2)
    # The period runs into the future: only its first two days had any chance of traffic.
    body = staff.get(url(start="2026-11-01", end="2026-11-20")).content.decode()
    assert "(20 visitors a day in this period)" in body


def test_the_sample_ratio_alarm(staff, shop):
    body = staff.get(url(**PERIOD)).content.decode()
    alert = re.search(
        r'<div class="pzn-alert" role="alert" id="pzn-srm">(.*?)</div>', body, flags=re.DOTALL
    )
    assert alert, "4 against 4 visitors with a 10% holdout is a broken split"
    text = alert.group(1)
    assert "Sample ratio mismatch" in text
    assert (
        "The control group is 50.0% of the visitors in this period, where 10.0% was expected"
        in text
    )
    srm = staff.get(url(format="json", **PERIOD)).json()["srm"]
    assert escape(stats.format_p(srm["p_value"])) in text
    for cause in (
        "bots",
        "cache",
        "one group only",
        "redirects",
        "changed while the test ran",
        "crossing groups",
    ):
        assert cause in text


def test_no_alarm_when_the_split_is_as_configured(staff, half_held_out):
    groups(300, 100, 300, 100)
    body = staff.get(url(**PERIOD)).content.decode()
    assert 'id="pzn-srm"' not in body and "Sample ratio mismatch" not in body
    assert "Within what chance gives" in body


def test_the_bayesian_probability_is_labelled_bayesian(staff, half_held_out):
    groups(200, 60, 200, 20)
    probability = staff.get(url(format="json", **PERIOD)).json()["probability_better"]
    body = staff.get(url(**PERIOD)).content.decode()
    assert (
        f'<p class="pzn-bayes">Bayesian probability that personalization converts better: '
        f"{100 * probability:.1f}%</p>" in body
    )


def test_visitors_of_both_groups_are_said_to_be_left_out(staff, shop):
    assert 'id="pzn-excluded"' not in staff.get(url(**PERIOD)).content.decode()
    Exposure.objects.create(
        visitor_id="p1", placement="home-hero", kind=Exposure.BANNER, content="default",
        is_control=True, created_at=SHOWN_AT,
    )  # fmt: skip
    data = staff.get(url(format="json", **PERIOD)).json()
    assert data["excluded_visitors"] == 1
    body = staff.get(url(**PERIOD)).content.decode()
    assert re.search(
        r'<p class="pzn-excluded" id="pzn-excluded">1 visitor was shown the content of both groups',
        body,
    )
    assert "left out of both" in body


def test_breakdowns_show_intervals_and_q_values(staff, shop):
    data = staff.get(url(format="json", **PERIOD)).json()
    body = staff.get(url(**PERIOD)).content.decode()
    assert "false discovery rate" in body and "Benjamini–Hochberg" in body
    home = next(row for row in data["by_placement"] if row["placement"] == "home-hero")
    low, high = home["difference_ci95"]
    table = body[body.index('id="pzn-by-placement"') :]
    table = table[: table.index("</table>")]
    assert f"{low:+.2f} to {high:+.2f}".replace("-", "−") in table
    q_shown = escape(stats.format_p(home["q_value"]).removeprefix("p = ").removeprefix("p "))
    assert f'<td class="pzn-num pzn-q">{q_shown}</td>' in table
    content = next(row for row in data["by_content"] if row["content"] == "banner:1")
    low, high = content["ci95"]
    assert f"{low:.2f}–{high:.2f}%" in body
    for table_id in ("by-referrer", "by-country", "by-goal"):
        table = body[body.index(f'id="pzn-{table_id}"') :]
        assert "q-value" in table[: table.index("</thead>")]


# Who may see it -----------------------------------------------------------------------------


def test_the_admin_index_links_to_the_report(staff):
    body = staff.get(reverse("admin:index")).content.decode()
    assert 'href="/admin/personalization/report/"' in body
    assert "Conversion report" in body


def test_the_report_cannot_be_added_changed_or_deleted(staff):
    body = staff.get(reverse("admin:index")).content.decode()
    assert 'href="/admin/personalization/report/add/"' not in body
    assert staff.get("/admin/personalization/report/add/").status_code == 404


def test_anonymous_visitors_are_sent_to_the_admin_login(client):
    response = client.get(url(**PERIOD))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    csv_response = client.get(url(format="csv", **PERIOD))
    assert csv_response.status_code == 302
    assert csv_response["Location"].startswith(reverse("admin:login"))


def test_users_who_are_not_staff_are_sent_to_the_admin_login(client, shop):
    user = get_user_model().objects.create_user("shopper", "s@example.com", "pw")
    client.force_login(user)
    for params in (PERIOD, {"format": "csv", **PERIOD}):
        response = client.get(url(**params))
        assert response.status_code in (302, 403)
        assert "Visitors" not in response.content.decode()
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("admin:login"))


# CSV ----------------------------------------------------------------------------------------


def test_the_csv_is_an_attachment_named_after_the_period(staff, shop):
    response = staff.get(url(format="csv", **PERIOD))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        'attachment; filename="personalization-report-2026-11-01-2026-11-02.csv"'
    )


def test_the_csv_holds_the_headline_lift_and_every_breakdown(staff, shop):
    rows = csv_rows(staff.get(url(format="csv", **PERIOD)))
    assert rows[1][:5] == ["report", "2026-11-01", "2026-11-02", "purchase", "7"]
    assert ["headline", "visitors", "4", "4"] in rows
    assert ["headline", "conversion_rate", "50.0", "25.0"] in rows
    assert ["headline", "revenue", "80.00", "20.00"] in rows
    lift = next(row for row in rows if row[:1] == ["lift"])
    assert float(lift[1]) == pytest.approx(1.0)
    sections = {row[0] for row in rows if row}
    assert {
        "by_placement",
        "by_content",
        "by_segment",
        "by_referrer",
        "by_country",
        "by_goal",
        "clicks",
        "clicks_any",
        "daily",
    } <= sections
    home = next(row for row in rows if row[:2] == ["by_placement", "home-hero"])
    assert home[2:8] == ["4", "2", "50.0", "4", "1", "25.0"]
    # Then the difference's interval (pp), its p-value and the table's q-value.
    header = next(row for row in rows if row[:2] == ["section", "placement"])
    assert header[8:] == ["difference_ci95_low", "difference_ci95_high", "p_value", "q_value"]
    assert float(home[8]) < 25.0 < float(home[9])
    # GB had personalized visitors only: no comparison, empty cells.
    assert ["by_country", "GB", "1", "0", "0.0", "0", "0", "0.0", "", "", "", ""] in rows
    assert ["clicks", "recommendation", "ratio", "3.0", "", ""] in rows
    daily = [row for row in rows if row and row[0] == "daily"]
    assert [row[1] for row in daily] == ["2026-11-01", "2026-11-02"]
    # Each section starts with its own header row.
    assert [
        "section",
        "placement",
        "content",
        "label",
        "visitors",
        "converted_visitors",
        "conversion_rate",
        "ci95_low",
        "ci95_high",
        "clicked_visitors",
    ] in rows


def test_the_csv_neutralizes_cells_that_a_spreadsheet_would_run(staff, shop):
    text = staff.get(url(format="csv", **PERIOD)).content.decode()
    rows = csv_rows(staff.get(url(format="csv", **PERIOD)))
    cells = [cell for row in rows for cell in row]
    for evil in (EVIL_PLACEMENT, EVIL_CONTENT, EVIL_SEGMENT, EVIL_SOURCE):
        assert "'" + evil in cells
        assert evil not in cells
    assert EVIL_LABEL in cells  # not a formula: text stays as it is in a CSV
    # No cell of the file starts a formula.
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "@", "\t", "\r")]
    assert "\n=" not in text and ",=" not in text


SEMICOLON_LABEL = "Spring sale;=cmd|' /C calc'!A0"
FORMULA_CHARS = ("=", "+", "-", "@", "＝", "＋", "－", "＠")


def test_no_cell_starts_a_formula_for_a_spreadsheet_splitting_on_semicolons(staff, shop):
    Exposure.objects.filter(placement="home-hero", is_control=False).update(
        content_label=SEMICOLON_LABEL
    )
    text = staff.get(url(format="csv", **PERIOD)).content.decode()
    # Read as the comma file it is, the label is one cell, neutralized after the ";".
    cells = [cell for row in csv_rows_of(text) for cell in row]
    assert "Spring sale;'=cmd|' /C calc'!A0" in cells
    assert SEMICOLON_LABEL not in cells
    # Read by a spreadsheet that splits on ";", a tab or "|" and ignores the comma's quotes,
    # no field starts a formula either.
    for line in text.splitlines():
        for separator in (";", "\t", "|"):
            for field in line.split(separator)[1:]:
                assert not field.lstrip(' "').startswith(FORMULA_CHARS), (separator, line)


def csv_rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_csv_agrees_with_the_json_and_the_page(staff, half_held_out):
    groups(200, 60, 200, 20)
    data = staff.get(url(format="json", **PERIOD)).json()
    rows = csv_rows(staff.get(url(format="csv", **PERIOD)))
    body = staff.get(url(**PERIOD)).content.decode()

    def section(name: str) -> dict[str, str]:
        index = next(i for i, row in enumerate(rows) if row[:1] == [name])
        return dict(zip(rows[index - 1][1:], rows[index][1:], strict=True))

    lift = section("lift")
    assert [float(lift["ci95_low"]), float(lift["ci95_high"])] == data["lift"]["ci95"]
    assert float(lift["p_value"]) == data["lift"]["p_value"]
    fixed = data["lift"]["fixed_horizon"]
    assert float(lift["fixed_horizon_p_value"]) == fixed["p_value"]
    assert [float(lift["fixed_horizon_ci95_low"]), float(lift["fixed_horizon_ci95_high"])] == (
        fixed["ci95"]
    )
    verdict = section("verdict")
    assert verdict["verdict"] == data["verdict"] == verdict_of(body) == "personalization-wins"
    assert float(verdict["probability_better"]) == data["probability_better"]
    assert int(verdict["visitors_needed"]) == data["visitors_needed"]
    assert (
        int(verdict["planned_personalized_visitors"]) == (data["planned_visitors"]["personalized"])
    )
    assert int(verdict["excluded_visitors"]) == data["excluded_visitors"] == 0
    srm = section("srm")
    assert float(srm["observed_control_share"]) == data["srm"]["observed_control_share"]
    assert float(srm["p_value"]) == data["srm"]["p_value"]
    assert srm["ok"] == "true" and data["srm"]["ok"] is True
    placement = section("by_placement")
    row = data["by_placement"][0]
    assert [float(placement["difference_ci95_low"]), float(placement["difference_ci95_high"])] == (
        row["difference_ci95"]
    )
    assert float(placement["q_value"]) == row["q_value"]


def test_neutralize_changes_only_text():
    assert neutralize("=1+1") == "'=1+1"
    assert neutralize(SEMICOLON_LABEL) == "Spring sale;'=cmd|' /C calc'!A0"
    assert neutralize('a;"=b') == "a;\"'=b"
    assert neutralize("x\n@y") == "x\n'@y"
    assert neutralize(" =1") == "' =1"
    assert neutralize("Buy 2, get 1 free; 10-12 May") == "Buy 2, get 1 free; 10-12 May"
    assert neutralize("-2+3") == "'-2+3"
    assert neutralize("\tx") == "'\tx"
    assert neutralize("\rx") == "'\rx"
    assert neutralize("＝1") == "'＝1"
    assert neutralize("home-hero") == "home-hero"
    assert neutralize(-0.2) == -0.2
    assert neutralize(Decimal("-5.00")) == Decimal("-5.00")
    assert neutralize(None) == ""


def test_a_negative_lift_stays_a_number_in_the_csv(staff, shop):
    # Make control win: three more control orders.
    for n, name in enumerate(["c2", "c3", "c4"]):
        Conversion.objects.create(
            visitor_id=name, kind=Conversion.PURCHASE, goal="purchase", order_id=f"B-{n}",
            revenue=Decimal("10.00"), is_control=True, created_at=SHOWN_AT + dt.timedelta(hours=1),
        )  # fmt: skip
    rows = csv_rows(staff.get(url(format="csv", **PERIOD)))
    lift = next(row for row in rows if row[:1] == ["lift"])
    assert float(lift[1]) == pytest.approx(-0.5)
    assert lift[1].startswith("-")


# Bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-11-05", "end": "2026-11-01"}, "is after the end"),
        ({"start": "yesterday", "end": "2026-11-01"}, "is not a date in the form YYYY-MM-DD"),
        ({"start": "2026-02-30", "end": "2026-03-01"}, "is not a date in the form YYYY-MM-DD"),
    ],
)
def test_a_bad_period_is_explained_with_400(staff, params, message):
    response = staff.get(url(**params))
    assert response.status_code == 400
    body = response.content.decode()
    assert '<p class="errornote" role="alert">' in body and message in body
    assert '<form method="get" class="pzn-filter"' in body  # to correct it
    assert 'id="pzn-headline"' not in body
    csv_response = staff.get(url(format="csv", **params))
    assert csv_response.status_code == 400
    assert message in csv_response.content.decode()
    assert not csv_response["Content-Type"].startswith("text/csv")
    json_response = staff.get(url(format="json", **params))
    assert json_response.status_code == 400
    assert message in json_response.json()["error"]


def test_an_unknown_format_is_refused(staff):
    response = staff.get(url(format="xlsx", **PERIOD))
    assert response.status_code == 400
    assert "Unknown format" in response.content.decode()


def test_the_json_flavour_is_the_report(staff, shop):
    data = staff.get(url(format="json", **PERIOD)).json()
    assert data["personalized"]["conversion_rate"] == 50.0
    assert data["control"]["revenue"] == "20.00"


def test_the_page_says_where_its_figures_come_from(staff, shop, clock):
    from personalization.reports import rollups

    page = staff.get(url(**PERIOD)).content.decode()
    assert "The raw rows, exactly." in page
    rollups.refresh()
    clock.shift(120)
    page = staff.get(url(**PERIOD)).content.decode()
    assert "Daily roll-ups refreshed every few minutes" in page
    # refreshed at 10:00 UTC (11:00 in Europe/Berlin): every row up to ten minutes before
    assert "(holding every row up to Nov. 2, 2026, 10:50 a.m.)" in page
    data = staff.get(url(format="json", **PERIOD)).json()
    assert data["source"] == "rollups"
    assert data["personalized"]["conversion_rate"] == 50.0
    assert data["control"]["revenue"] == "20.00"


def test_revenue_intervals_agree_on_the_page_in_the_json_and_the_csv(staff, shop):
    data = staff.get(url(format="json", **PERIOD)).json()
    rows = csv_rows(staff.get(url(format="csv", **PERIOD)))
    body = staff.get(url(**PERIOD)).content.decode()
    personalized, control = data["personalized"], data["control"]
    # personalized visitors bought 30 and 50 of 4: revenue per visitor 20, sample sd 24.5
    assert personalized["revenue_per_visitor"] == "20.00"
    assert personalized["revenue_per_visitor_ci95"] == ["0.00", "44.00"]
    headline = {row[1]: row[2:] for row in rows if row[:1] == ["headline"]}
    assert headline["revenue_per_visitor_ci95_low"] == ["0.00", "0.00"]
    assert headline["revenue_per_visitor_ci95_high"] == [
        personalized["revenue_per_visitor_ci95"][1],
        control["revenue_per_visitor_ci95"][1],
    ]
    assert "95%: 0.00 to 44.00" in body
    lift = data["revenue_per_visitor_lift"]
    assert lift["relative"] == 3.0  # 20 / 5 - 1
    index = next(i for i, row in enumerate(rows) if row[:1] == ["revenue_per_visitor_lift"])
    assert [float(value) for value in rows[index][1:]] == [lift["relative"], *lift["ci95"]]
    assert "Revenue per visitor: +300.0% for personalization" in body
