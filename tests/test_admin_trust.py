"""An admin that shops can trust: the report takes a permission of its own; searches work with
any user model; the app's admin markup keeps a strict Content-Security-Policy; the report never
answers with a 500."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.http import HttpRequest
from django.template import engines
from django.template.loader_tags import BlockNode
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from personalization.admin.base import user_search_fields
from personalization.models import (
    Banner,
    Conversion,
    EmailRecipient,
    EmailSend,
    Exposure,
    Placement,
    PlacementRule,
    Segment,
    SegmentRule,
    Visitor,
)
from personalization.models.measurement import Report
from tests.conftest import BROWSER_UA
from tests.rows import banner_shown

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
SHOWN_AT = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
PERIOD = {"start": "2026-11-01", "end": "2026-11-02"}
API = "/personalization/api/report/"


def report_url(**params: str) -> str:
    query = urlencode(params)
    return reverse("admin:personalization_report") + (f"?{query}" if query else "")


@pytest.fixture
def figures(clock: Any) -> None:
    """Personalized and control visitors with orders, a control share far from the 10%
    configured (the sample-ratio alarm shows), and one visitor shown both groups."""
    for n, control in enumerate([False] * 6 + [True] * 6):
        visitor = Visitor.objects.create(
            id=f"{'c' if control else 'p'}{n}",
            first_seen=SHOWN_AT,
            last_seen=SHOWN_AT,
            first_source="search",
            latest_source="search",
            country_code="DE",
            in_control_group=control,
        )
        banner_shown(visitor, control=control, at=SHOWN_AT)
        if n % 3 == 0:
            Conversion.objects.create(
                visitor=visitor,
                kind=Conversion.PURCHASE,
                goal="purchase",
                order_id=f"A-{n}",
                revenue=Decimal("40.00"),
                is_control=control,
                created_at=SHOWN_AT + dt.timedelta(hours=1),
            )
    both = Visitor.objects.get(id="p1")
    Exposure.objects.create(
        visitor=both, placement="cart", kind=Exposure.BANNER, content="default", is_control=True,
        created_at=SHOWN_AT,
    )  # fmt: skip


# Who may read the report -------------------------------------------------------------------


def _client(user: Any | None) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def people() -> dict[str, Client]:
    """Anonymous, staff without the report's permission, staff given it through a group, and
    a superuser."""
    users = get_user_model().objects
    analysts = Group.objects.create(name="Analysts")
    analysts.permissions.add(Permission.objects.get(codename="view_report"))
    analyst = users.create_user("analyst", "analyst@example.com", "pw", is_staff=True)
    analyst.groups.add(analysts)
    return {
        "anonymous": _client(None),
        "staff": _client(users.create_user("clerk", "clerk@example.com", "pw", is_staff=True)),
        "analyst": _client(analyst),
        "superuser": _client(users.create_superuser("boss", "boss@example.com", "pw")),
    }


ENDPOINTS = {
    "page": report_url(**PERIOD),
    "csv": report_url(format="csv", **PERIOD),
    "json": report_url(format="json", **PERIOD),
    "api": f"{API}?{urlencode(PERIOD)}",
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("who", ["analyst", "superuser"])
def test_staff_with_the_permission_read_every_form_of_the_report(
    people: dict[str, Client], figures: None, who: str, endpoint: str
) -> None:
    response = people[who].get(ENDPOINTS[endpoint])
    assert response.status_code == 200
    if endpoint == "page":
        assert b'id="pzn-verdict"' in response.content
    elif endpoint == "csv":
        assert response["Content-Type"].startswith("text/csv")
        assert b'"headline","revenue",80.00,80.00' in response.content
    else:
        report = response.json()
        # p1, shown both groups, counts in neither.
        assert report["personalized"]["visitors"] == report["control"]["visitors"] - 1 == 5
        assert report["personalized"]["revenue"] == report["control"]["revenue"] == "80.00"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_staff_without_the_permission_get_a_403_and_no_figures(
    people: dict[str, Client], figures: None, endpoint: str
) -> None:
    response = people["staff"].get(ENDPOINTS[endpoint])
    assert response.status_code == 403
    assert b"80.00" not in response.content and b"pzn-verdict" not in response.content
    if endpoint in ("json", "api"):
        message = response.json().get("error") or response.json().get("detail")
        assert "personalization.view_report" in message


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_anonymous_visitors_are_sent_to_the_login_or_refused(
    people: dict[str, Client], figures: None, endpoint: str
) -> None:
    response = people["anonymous"].get(ENDPOINTS[endpoint])
    if endpoint == "api":
        assert response.status_code in (401, 403)
        assert "revenue" not in response.json()
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_a_superuser_who_is_not_staff_reads_nothing() -> None:
    user = get_user_model().objects.create_user("owner", "o@example.com", "pw", is_superuser=True)
    client = _client(user)
    assert client.get(API).status_code == 403
    assert client.get(report_url()).status_code == 302  # the admin's login, as for anyone


def test_the_admin_lists_the_report_only_for_those_who_may_open_it(
    people: dict[str, Client],
) -> None:
    report = reverse("admin:personalization_report")
    app_list = reverse("admin:app_list", args=["personalization"])
    for who in ("analyst", "superuser"):
        assert f'href="{report}"' in people[who].get(reverse("admin:index")).text
        assert f'href="{report}"' in people[who].get(app_list).text
    # Staff who may see segments, but not the report: the app is listed, the report is not.
    clerk = get_user_model().objects.get(username="clerk")
    clerk.user_permissions.add(Permission.objects.get(codename="view_segment"))
    index = people["staff"].get(reverse("admin:index")).text
    assert reverse("admin:personalization_segment_changelist") in index
    assert f'href="{report}"' not in index
    assert f'href="{report}"' not in people["staff"].get(app_list).text


def test_the_report_has_one_permission_and_superusers_have_it() -> None:
    content_type = ContentType.objects.get_for_model(Report, for_concrete_model=False)
    permissions = Permission.objects.filter(content_type=content_type)
    assert {p.codename for p in permissions} == {"view_report"}
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    assert boss.has_perm("personalization.view_report")
    clerk = get_user_model().objects.create_user("clerk", "c@example.com", "pw", is_staff=True)
    assert not clerk.has_perm("personalization.view_report")


# The report never answers with a 500 ------------------------------------------------------------


@pytest.fixture
def broken_database(figures: None) -> None:
    """The exposure table is gone (a migration not run, a table dropped by hand): every query
    of the report fails. Renamed inside the test's transaction, which puts it back."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE personalization_exposure RENAME TO pzn_exposure_away")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_report_that_cannot_be_computed_is_a_503_that_says_so(
    people: dict[str, Client], broken_database: None, endpoint: str, caplog: Any
) -> None:
    response = people["superuser"].get(ENDPOINTS[endpoint])
    assert response.status_code == 503
    body = response.content.decode()
    assert "could not be computed" in body
    assert any(record.exc_info for record in caplog.records), "the error is logged"
    if endpoint == "page":
        assert 'id="pzn-start"' in body  # the page, with its form to choose again


# Searches with any user model ---------------------------------------------------------------


def test_user_search_fields_follow_the_user_model() -> None:
    assert user_search_fields("user") == ["user__username", "user__email"]
    visitor_admin = admin.site._registry[Visitor]
    assert "user__username" in visitor_admin.get_search_fields(HttpRequest())


def test_visitors_are_found_by_their_account() -> None:
    ada = get_user_model().objects.create_user("ada", "ada@example.com", "pw")
    for visitor_id, user in (("v-ada", ada), ("v-anon", None)):
        Visitor.objects.create(
            id=visitor_id, user=user, first_seen=SHOWN_AT, last_seen=SHOWN_AT,
            first_source="direct", latest_source="direct",
        )  # fmt: skip
    client = _client(get_user_model().objects.create_superuser("boss", "b@example.com", "pw"))
    response = client.get(reverse("admin:personalization_visitor_changelist"), {"q": "ada@exa"})
    assert response.status_code == 200
    assert [visitor.pk for visitor in response.context["cl"].result_list] == ["v-ada"]


def project_of_its_own(tmp_path: Path, app: str) -> dict:
    """What ``tests/<app>/check.py`` prints, run with ``tests.<app>.settings`` in a process
    of its own, on a fresh SQLite file whatever the suite runs on."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": f"tests.{app}.settings",
        "PZN_CUSTOMUSER_DB": str(tmp_path / f"{app}.sqlite3"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("PZN_TEST_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", f"tests.{app}.check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_admin_works_with_an_email_login_user_model(tmp_path: Path) -> None:
    """A project of its own (tests/customuser: AUTH_USER_MODEL without ``username``), migrated
    on a fresh SQLite file in a process of its own, searched through the admin."""
    result = project_of_its_own(tmp_path, "customuser")
    assert result["user_model"] == "customuser.EmailUser" and result["has_username"] is False
    assert result["system_check_errors"] == []
    assert result["visitor_search_fields"] == ["id", "latest_campaign", "user__email"]
    assert result["searched"] == {
        "visitor": {"status": 200, "rows": ["v-ada"]},
        "referralcode": {"status": 200, "rows": ["BOB-CODE"]},
        # Found through its account's address, not the address the signup holds.
        "signup": {"status": 200, "rows": ["ada.other@example.com"]},
    }
    assert result["every_search"] and set(result["every_search"].values()) == {200}
    assert result["report_access"] == {
        "superuser": {"page": 200, "api": 200, "index_links_report": True},
        "staff": {"page": 403, "api": 403, "index_links_report": False},
        "staff_in_group": {"page": 200, "api": 200, "index_links_report": True},
    }


def test_the_report_works_with_a_user_model_without_permissions_mixin(tmp_path: Path) -> None:
    """A project whose user model has no ``is_superuser`` (tests/plainuser): the report and
    its API answer, and a staff member's own visit is still left out of it."""
    result = project_of_its_own(tmp_path, "plainuser")
    assert result["has_is_superuser"] is False
    assert (result["page"], result["api"]) == (200, 200)
    # Ada (personalized) and Bob (control) count; the clerk, staff, does not.
    assert result["personalized"]["visitors"] == 1 and result["control"]["visitors"] == 1
    assert result["rollups"] == {"ok": True}


# Markup a strict Content-Security-Policy allows ------------------------------------------------

OUR_TEMPLATES = ["admin/personalization/report.html", "admin/personalization/email_preview.html"]


def csp_problems(html: str) -> list[str]:
    """What a policy without 'unsafe-inline' blocks: <style> elements, scripts without src,
    style attributes, event-handler attributes and javascript: URLs."""
    problems = []
    for tag in re.findall(r"<[a-zA-Z][^>]*>", html):
        name = re.match(r"<([a-zA-Z][\w-]*)", tag).group(1).lower()
        blocked = (
            name == "style"
            or (name == "script" and not re.search(r"\ssrc\s*=", tag))
            or re.search(r"\s(style|on[a-z]+)\s*=", tag, flags=re.IGNORECASE)
            or re.search(r"=\s*[\"']?\s*javascript:", tag, flags=re.IGNORECASE)
        )
        if blocked:
            problems.append(tag)
    return problems


def test_the_scan_finds_what_a_policy_blocks() -> None:
    for bad in [
        "<style>p{}</style>",
        "<script>alert(1)</script>",
        '<script type="module">x()</script>',
        '<div style="color:red">',
        '<rect STYLE="fill:red"/>',
        '<a href="#" onclick="x()">',
        '<body onload="x()">',
        '<a href="javascript:x()">',
    ]:
        assert csp_problems(bad), bad
    for good in [
        '<script src="/static/x.js" defer></script>',
        '<link rel="stylesheet" href="/static/x.css">',
        '<rect fill="#417690" class="pzn-bar"/>',
        "<p>style=nothing onclick=nothing, as text</p>",
        '<a href="/admin/" data-onclick="no">',
    ]:
        assert not csp_problems(good), good


@pytest.fixture
def only_our_markup(settings: Any) -> list[str]:
    """Django's admin base template replaced by a skeleton that declares the blocks our
    templates fill, each between markers, and nothing else: a page rendered through it is our
    markup alone. Returns the names of the blocks."""
    names: list[str] = []
    for name in OUR_TEMPLATES:
        template = engines["django"].get_template(name).template
        names += [node.name for node in template.nodelist.get_nodes_by_type(BlockNode)]
    skeleton = "".join(
        f"<!--pzn:{name}-->{{% block {name} %}}{{% endblock %}}<!--/pzn:{name}-->"
        for name in dict.fromkeys(names)
    )
    (options,) = [dict(engine["OPTIONS"]) for engine in settings.TEMPLATES]
    options["loaders"] = [
        ("django.template.loaders.locmem.Loader", {"admin/base_site.html": skeleton}),
        "django.template.loaders.app_directories.Loader",
    ]
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "APP_DIRS": False, "OPTIONS": options}]
    return list(dict.fromkeys(names))


@pytest.fixture
def boss() -> Client:
    return _client(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw"))


@pytest.mark.parametrize(
    "query",
    [
        PERIOD,  # figures, the verdict, both charts, every table, the sample-ratio alert
        {**PERIOD, "view": "fixed"},  # the single-look figures
        {"start": "2026-11-01", "end": "2026-11-30"},  # days without visitors in the charts
        {"start": "2026-13-01"},  # an error, with the form
        {"start": "2026-11-01", "end": "2026-11-02", "goal": "nothing-recorded"},
    ],
)
def test_the_report_template_has_no_inline_style_or_script(
    only_our_markup: list[str], boss: Client, figures: None, query: dict[str, str]
) -> None:
    response = boss.get(report_url(**query))
    body = response.content.decode()
    assert response.status_code in (200, 400)
    assert "Django administration" not in body  # Django's own markup is not in what is scanned
    assert "<!--pzn:content-->" in body and 'class="pzn-report"' in body
    if response.status_code == 200:
        assert body.count("<svg") == 2 and 'id="pzn-srm"' in body
        assert "<table" in body and 'id="pzn-excluded"' in body
    assert csp_problems(body) == []
    assert '/static/personalization/admin/report.css"' in body


def test_the_email_preview_template_has_no_inline_style_or_script(
    only_our_markup: list[str], boss: Client, settings: Any, make_product: Any
) -> None:
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "EMAIL_SITE_URL": "https://shop.ex"}
    make_product(slug="tent", name="Trail tent")
    recipient = EmailRecipient.objects.create(
        email="ada@example.com", consent_at=timezone.now(), consent_source="popup",
        consent_text="Yes",
    )  # fmt: skip
    url = reverse("admin:personalization_email_preview", args=[recipient.pk, "welcome"])
    response = boss.get(url)
    body = response.content.decode()
    assert response.status_code == 200 and "<!--pzn:content-->" in body
    assert "<iframe" in body and "srcdoc" not in body
    assert csp_problems(body) == []
    # The frame's document is the email's own, with a policy of its own.
    frame = boss.get(url + "body/")
    assert frame.status_code == 200 and b"<html" in frame.content.lower()
    assert frame["Content-Security-Policy"].startswith("sandbox;")
    assert "style-src 'unsafe-inline'" in frame["Content-Security-Policy"]
    assert "script-src" not in frame["Content-Security-Policy"]  # default-src 'none'
    assert frame["X-Frame-Options"] == "SAMEORIGIN"
    assert Client().get(url + "body/").status_code == 302  # staff only
    assert not EmailSend.objects.exists()  # nothing recorded


def sent_email(body_html: str, recipient: Any = None) -> Any:
    """A welcome email sent to ``recipient`` (a new one for ada@example.com by default)."""
    if recipient is None:
        recipient = EmailRecipient.objects.create(
            email="ada@example.com", consent_at=timezone.now(), consent_source="popup",
            consent_text="Yes",
        )  # fmt: skip
    return EmailSend.objects.create(
        id=uuid.uuid4(), recipient=recipient, flow="welcome", trigger="test",
        status=EmailSend.SENT, subject="Welcome", body_text="Welcome", body_html=body_html,
    )  # fmt: skip


def one_of_each_model(body_html: str = '<p style="color:red">Hi</p>') -> dict[type, Any]:
    """An object of each model whose change form has markup of ours."""
    segment = Segment.objects.create(name="Newcomers", slug="newcomers")
    SegmentRule.objects.create(segment=segment, kind="first_visit", value="", position=0)
    placement = Placement.objects.create(slug="home-hero", name="Home hero")
    PlacementRule.objects.create(
        placement=placement, kind=PlacementRule.BOOST_CATEGORY, category_key="tents", weight=2
    )
    banner = Banner.objects.create(placement=placement, name="Winter", title="Winter sale")
    banner.segments.add(segment)
    send = sent_email(body_html)
    return {
        Segment: segment,
        Placement: placement,
        Banner: banner,
        EmailRecipient: send.recipient,
        EmailSend: send,
    }


@pytest.fixture
def one_of_each() -> dict[type, Any]:
    return one_of_each_model()


def _our_admins() -> list[tuple[type, admin.ModelAdmin]]:
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == "personalization"
    ]


def test_what_our_admin_classes_render_has_no_inline_style_or_script(
    one_of_each: dict[type, Any], boss: Client
) -> None:
    """The markup Django's change lists and forms show from our code: display and read-only
    callables, fieldset descriptions, help texts and our forms' widgets."""
    request = HttpRequest()
    request.user = get_user_model().objects.get(username="boss")
    rendered: dict[str, str] = {}
    for model, model_admin in _our_admins():
        obj = one_of_each.get(model) or model._default_manager.first()
        label = model._meta.model_name
        names = [*model_admin.get_list_display(request)]
        if obj is not None:
            names += model_admin.get_readonly_fields(request, obj)
        for name in names:
            function = getattr(model_admin, str(name), None)
            if callable(function) and obj is not None:
                rendered[f"{label}.{name}"] = str(function(obj))
        for _title, options in model_admin.get_fieldsets(request, obj):
            if options.get("description"):
                rendered[f"{label} fieldset"] = str(options["description"])
        if model_admin.has_change_permission(request, obj) or model_admin.has_add_permission(
            request
        ):
            form = model_admin.get_form(request, obj)(instance=obj)
            rendered[f"{label} form"] = str(form)
            for inline in model_admin.get_inline_instances(request, obj):
                formset = inline.get_formset(request, obj)(instance=obj)
                rendered[f"{label} {inline.model._meta.model_name} inline"] = str(formset)
    assert "emailsend.preview" in rendered and "segment fieldset" in rendered
    assert "placement placementrule inline" in rendered
    problems = {label: csp_problems(html) for label, html in rendered.items()}
    assert {label: found for label, found in problems.items() if found} == {}
    # The outbox shows the email from a URL of its own, not inline.
    assert 'src="/admin/personalization/emailsend/' in rendered["emailsend.preview"]


def test_every_change_list_and_form_of_the_app_renders(
    one_of_each: dict[type, Any], boss: Client
) -> None:
    """The pages the scans above cover parts of: each answers 200 and loads the stylesheet its
    markup relies on, where it has one."""
    for model, _model_admin in _our_admins():
        name = model._meta.model_name
        if name == "report":
            continue
        assert boss.get(reverse(f"admin:personalization_{name}_changelist")).status_code == 200
        obj = one_of_each.get(model) or model._default_manager.first()
        if obj is not None:
            page = boss.get(reverse(f"admin:personalization_{name}_change", args=[obj.pk]))
            assert page.status_code == 200, name
            if model is EmailSend:
                assert b"/static/personalization/admin/email.css" in page.content
                body = boss.get(reverse("admin:personalization_emailsend_body", args=[obj.pk]))
                assert body.status_code == 200 and b'style="color:red"' in body.content
                assert body["Content-Security-Policy"].startswith("sandbox;")
