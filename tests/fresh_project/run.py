"""A new Django project set up by following README.md's "Adding it to a shop", literally.

    python tests/fresh_project/run.py

Run it with the interpreter that has django-personalization installed: it installs nothing.
In a temporary directory it runs ``django-admin startproject shop``, adds a small ``catalog``
app (the product model, product page and home page the README assumes), then applies the
README's code blocks marked ``<!-- fresh-project: NAME -->`` — settings, URLs, the commands,
the templates, the checkout call — so that what a reader copies is what is tested. It serves
the project with ``runserver`` (gunicorn when installed) and no Celery app, drives it over
HTTP, and exits non-zero if anything fails. Set ``PZN_FRESH_KEEP=1`` to keep the directory.
"""

from __future__ import annotations

import contextlib
import email
import html.parser
import http.cookiejar
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = [
    "install",
    "install-celery",
    "settings.py",
    "urls.py",
    "commands",
    "base.html",
    "home.html",
    "product_detail.html",
    "checkout",
    "jobs",
    "email",
]
ADMIN_USER, ADMIN_PASSWORD = "admin", "fresh-project-admin-pw"
COOKIE_NAME = "pzn_vid"  # the documented default of PERSONALIZATION["COOKIE_NAME"]
STARTED = time.monotonic()


class Failed(Exception):
    """A step that the rest of the run cannot do without."""


# Reporting --------------------------------------------------------------------------------
results: list[tuple[str, bool, str]] = []


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.1f}s] {message}", flush=True)


def check(name: str, ok: bool, detail: str = "") -> bool:
    results.append((name, ok, detail))
    say(f"  {'ok  ' if ok else 'FAIL'} {name}" + (f" — {detail}" if detail and not ok else ""))
    return ok


# The README's blocks ----------------------------------------------------------------------
MARKED = re.compile(
    r"<!--\s*fresh-project:\s*(?P<name>[\w.\-]+)\s*-->\s*\n\s*```(?P<lang>[\w-]*)\n(?P<code>.*?)\n\s*```",
    re.DOTALL,
)


def readme_blocks() -> dict[str, str]:
    found: dict[str, str] = {}
    for match in MARKED.finditer(README.read_text(encoding="utf-8")):
        name = match["name"]
        if name in found:
            raise Failed(f"README.md marks two blocks as fresh-project: {name}")
        found[name] = textwrap.dedent(match["code"]) + "\n"
    missing = [name for name in BLOCKS if name not in found]
    if missing:
        raise Failed(f"README.md has no block marked <!-- fresh-project: NAME --> for {missing}")
    return found


def command_lines(block: str) -> list[list[str]]:
    """The commands of a shell block, as argument lists (comments dropped)."""
    lines = []
    for line in block.splitlines():
        args = shlex.split(line, comments=True)
        if args:
            lines.append(args)
    return lines


# Processes --------------------------------------------------------------------------------
def run(args: list[str], cwd: Path, env: dict[str, str], shown: str | None = None) -> str:
    say(f"$ {shown or ' '.join(args)}")
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise Failed(f"`{shown or ' '.join(args)}` exited {done.returncode}:\n{output}")
    return output


def manage(project: Path, env: dict[str, str], *args: str) -> str:
    return run(
        [sys.executable, "manage.py", *args], project, env, "python manage.py " + shlex.join(args)
    )


def django_admin() -> list[str]:
    script = Path(sys.executable).with_name("django-admin")
    return [str(script)] if script.exists() else [sys.executable, "-m", "django"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# HTTP -------------------------------------------------------------------------------------
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Client:
    """A browser of sorts: a cookie jar, no redirects followed, every status returned."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def request(
        self,
        method: str,
        path: str,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, method=method)
        req.add_header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0")
        req.add_header("Accept", "text/html,application/json")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        if body is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self.opener.open(req, timeout=30) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode(errors="replace")

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], str]:
        return self.request(
            "GET", path, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )

    def post(self, path: str, data: dict[str, str]) -> tuple[int, dict[str, str], str]:
        return self.request("POST", path, data)

    def cookie(self, name: str) -> str | None:
        return next((cookie.value for cookie in self.jar if cookie.name == name), None)


class FormFields(html.parser.HTMLParser):
    """What a browser would submit from a page's forms, before the user changes anything."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {key: value or "" for key, value in attrs}
        name = attr.get("name", "")
        if tag == "input" and name and "__prefix__" not in name:
            kind = attr.get("type", "text")
            if kind in {"submit", "button", "file", "image"}:
                return
            if kind in {"checkbox", "radio"} and "checked" not in attr:
                return
            self.fields[name] = attr.get("value", "on" if kind == "checkbox" else "")
        elif tag == "select" and "__prefix__" not in name:
            self._select = name
            self.fields.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in attr:
            self.fields[self._select] = attr.get("value", "")
        elif tag == "textarea" and "__prefix__" not in name:
            self._textarea = name
            self.fields[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea] += data


def form_fields(page: str) -> dict[str, str]:
    parser = FormFields()
    parser.feed(page)
    return parser.fields


def recommended_products(page: str) -> int:
    return len(re.findall(r"data-personalization-product=", page))


# The shop's own code, before the README: what the README assumes a shop has ---------------
CATALOG_MODELS = """\
from django.db import models
from django.urls import reverse


class Category(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)

    def __str__(self):
        return self.name


class Product(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    image = models.ImageField(upload_to="products/", blank=True)

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("catalog:product-detail", kwargs={"slug": self.slug})
"""

CATALOG_VIEWS = '''\
import itertools
from types import SimpleNamespace

from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import Product

_numbers = itertools.count(1001)


def home(request):
    return render(request, "home.html")


def product_detail(request, slug):
    product = get_object_or_404(Product, slug=slug)
    return render(request, "catalog/product_detail.html", {"product": product})


class _Lines(list):
    def all(self):
        return self


@csrf_exempt
@require_POST
def checkout(request):
    """A stand-in for the shop's checkout: the order is "saved", then reported."""
    product = get_object_or_404(Product, slug=request.POST["product"])
    line = SimpleNamespace(product_id=product.pk, quantity=1, unit_price=product.price)
    order = SimpleNamespace(number=f"A-{next(_numbers)}", total=product.price, lines=_Lines([line]))
{checkout}
    return JsonResponse({"order": order.number})
'''

CATALOG_URLS = """\
from django.urls import path

from . import views

app_name = "catalog"
urlpatterns = [
    path("", views.home, name="home"),
    path("products/<slug:slug>/", views.product_detail, name="product-detail"),
    path("checkout/", views.checkout, name="checkout"),
]
"""

SEED = """\
from catalog.models import Category, Product
camping = Category.objects.create(name="Camping", slug="camping")
coffee = Category.objects.create(name="Coffee", slug="coffee")
for name, price, category in [
    ("Trail tent", "189.00", camping), ("Sleeping bag", "89.00", camping),
    ("Camp stove", "49.50", camping), ("Head torch", "24.90", camping),
    ("House blend", "12.50", coffee), ("Espresso roast", "14.00", coffee),
]:
    Product.objects.create(name=name, slug=name.lower().replace(" ", "-"), price=price,
                           category=category)
print(Product.objects.count(), "products")
"""

FACTS = """\
import json
from personalization.models import Conversion, Exposure, JobRun, Placement, Segment, Visitor
segment = Segment.objects.filter(slug="returning-visitors").first()
print("FACTS " + json.dumps({
    "segment_counted": segment is not None and segment.matching_visitors is not None,
    "visitors": Visitor.objects.count(),
    "exposures": Exposure.objects.count(),
    "orders": Conversion.objects.filter(kind=Conversion.PURCHASE).count(),
    "placements": sorted(Placement.objects.values_list("slug", flat=True)),
    "jobs": {row.name: row.status for row in JobRun.objects.all()},
}))
"""


def write(path: Path, text: str, append: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as file:
        file.write(text)


def facts(project: Path, env: dict[str, str]) -> dict[str, Any]:
    output = manage(project, env, "shell", "-c", FACTS)
    line = next(line for line in output.splitlines() if line.startswith("FACTS "))
    return dict(json.loads(line[len("FACTS ") :]))


# The run ----------------------------------------------------------------------------------
def check_install(block: str) -> None:
    """Step 1 installs nothing here; what it names must be what this interpreter has."""
    say("1. install — checking the README's pip lines against this interpreter")
    metadata = importlib.metadata.metadata("django-personalization")
    extras = set(metadata.get_all("Provides-Extra") or [])
    for args in command_lines(block):
        if args[:2] != ["pip", "install"] or len(args) != 3:
            raise Failed(f"step 1 has a line the test cannot read: {shlex.join(args)}")
        name, _, rest = args[2].partition("[")
        wanted = {extra.strip() for extra in rest.rstrip("]").split(",") if extra.strip()}
        check(
            f"`{shlex.join(args)}` names this package and known extras",
            name == "django-personalization" and wanted <= extras,
            f"extras {sorted(wanted - extras)} unknown; package has {sorted(extras)}",
        )


def set_up(tmp: Path, blocks: dict[str, str], env: dict[str, str]) -> Path:
    say("startproject and the shop's own catalog app")
    run([*django_admin(), "startproject", "shop"], tmp, env, "django-admin startproject shop")
    project = tmp / "shop"
    manage(project, env, "startapp", "catalog")
    catalog = project / "catalog"
    write(catalog / "models.py", CATALOG_MODELS)
    checkout = textwrap.indent(blocks["checkout"], "    ")
    write(catalog / "views.py", CATALOG_VIEWS.replace("{checkout}", checkout.rstrip("\n")))
    write(catalog / "urls.py", CATALOG_URLS)
    settings, urls = project / "shop" / "settings.py", project / "shop" / "urls.py"
    write(settings, '\n\n# The shop\'s own app.\nINSTALLED_APPS += ["catalog"]\n', append=True)
    write(
        urls,
        "\n\nfrom django.urls import include  # the shop's own pages\n\n"
        'urlpatterns += [path("", include("catalog.urls"))]\n',
        append=True,
    )

    say("2. settings, 3. urls, 5. templates and the checkout — from README.md")
    write(settings, "\n\n# From the README.\n" + blocks["settings.py"], append=True)
    write(settings, "\n\n# From the README (8. Email).\n" + blocks["email"], append=True)
    write(settings, EMAIL_TEST_SETTINGS.format(outbox=tmp / "outbox"), append=True)
    write(urls, "\n\n# From the README.\n" + blocks["urls.py"], append=True)
    templates = catalog / "templates"
    write(templates / "base.html", blocks["base.html"])
    write(templates / "home.html", blocks["home.html"])
    write(templates / "catalog" / "product_detail.html", blocks["product_detail.html"])
    manage(project, env, "makemigrations", "catalog")

    say("4. migrate and check — the README's commands")
    for args in command_lines(blocks["commands"]):
        if args[:2] != ["python", "manage.py"]:
            raise Failed(f"step 4 has a line the test cannot run: {shlex.join(args)}")
        output = manage(project, env, *args[2:])
        if args[2] == "check":
            ids = sorted(set(re.findall(r"personalization\.[EW]\d+", output)))
            check("`manage.py check` reports nothing from personalization", not ids, str(ids))
            check(
                "`manage.py check` says there is no issue",
                "identified no issues" in output,
                output.strip()[-500:],
            )

    say("the shop's staff account and products")
    manage(
        project,
        {**env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD},
        "createsuperuser",
        "--noinput",
        "--username",
        ADMIN_USER,
        "--email",
        "admin@shop.example",
    )
    manage(project, env, "shell", "-c", SEED)
    return project


def start_server(
    project: Path, env: dict[str, str], log: Path, port: int
) -> tuple[subprocess.Popen, str]:
    if importlib.util.find_spec("gunicorn") is not None:
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            "shop.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--access-logfile",
            "-",
        ]
    else:
        args = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    say(f"$ {' '.join(args[1:])}   (no Celery app; log in {log.name})")
    server = subprocess.Popen(
        args, cwd=project, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise Failed(f"the server exited {server.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    raise Failed(f"the server did not answer within 30 s:\n{log.read_text()}")


def drive(project: Path, blocks: dict[str, str], env: dict[str, str], base: str) -> None:
    say("a first visitor, before any job ran")
    visitor = Client(base)
    status, _, page = visitor.get("/")
    check("home page answers 200", status == 200, f"status {status}: {page[:300]}")
    check(
        "home page sets the visitor cookie",
        visitor.cookie(COOKIE_NAME) is not None,
        f"cookies: {[cookie.name for cookie in visitor.jar]}",
    )
    check(
        "the recommendations block shows products on the very first request",
        recommended_products(page) > 0,
        "no data-personalization-product in the home page",
    )
    check("the page loads the personalization script", "personalization.js" in page)
    status, _, page = visitor.get("/products/trail-tent/")
    check("product page answers 200", status == 200 and "Trail tent" in page, f"status {status}")
    status, _, _ = visitor.get("/products/no-such-thing/")
    check("an unknown product still 404s", status == 404, f"status {status}")
    status, _, page = visitor.get("/")
    check("home page answers 200 on the next visit", status == 200, f"status {status}")
    status, _, body = visitor.post("/checkout/", {"product": "trail-tent"})
    check("the checkout's track.order (README step 5) answers", status == 200, body[:500])
    status, _, body = visitor.get("/personalization/api/recommendations/?placement=cart&limit=2")
    check(
        "GET /personalization/api/recommendations/ answers with items",
        status == 200 and bool(json.loads(body).get("items")),
        f"status {status}: {body[:300]}",
    )
    status, _, body = visitor.get("/personalization/api/schema/")
    check("GET /personalization/api/schema/ answers 200", status == 200, f"status {status}")
    private = Client(base)
    status, _, _ = private.get("/", DNT="1")
    check(
        "a visitor sending DNT: 1 gets the page and no visitor cookie",
        status == 200 and private.cookie(COOKIE_NAME) is None,
        f"status {status}; cookies {[cookie.name for cookie in private.jar]}",
    )

    say("staff: the admin, without a broker")
    staff = Client(base)
    status, _, page = staff.get("/admin/login/?next=/admin/")
    fields = form_fields(page)
    fields.update(username=ADMIN_USER, password=ADMIN_PASSWORD)
    status, _, page = staff.post("/admin/login/?next=/admin/", fields)
    if not check("admin login redirects", status == 302, f"status {status}: {page[:300]}"):
        raise Failed("cannot log in to the admin")
    status, _, page = staff.get("/admin/personalization/segment/add/")
    check("the segment form answers 200", status == 200, f"status {status}")
    fields = form_fields(page)
    fields.update(
        {
            "name": "Returning visitors",
            "slug": "returning-visitors",
            "match": "all",
            "is_active": "on",
            "rules-0-kind": "returning",
            "rules-0-value": "",
            "rules-0-position": "0",
            "_save": "Save",
        }
    )
    status, _, page = staff.post("/admin/personalization/segment/add/", fields)
    errors = re.findall(r'class="errorlist[^"]*"[^>]*>(.*?)</ul>', page, re.DOTALL)
    check(
        "saving a new segment redirects (no broker needed)",
        status == 302,
        f"status {status}; form errors: {errors[:3] or page[:300]}",
    )
    status, _, page = staff.get("/admin/personalization/placement/")
    check(
        "the placement used by the home page is in the admin",
        status == 200 and "home-hero" in page,
        f"status {status}; no home-hero in Personalization → Placements",
    )
    status, _, page = staff.get("/admin/personalization/jobrun/")
    check(
        "the admin lists the periodic jobs",
        status == 200 and "Run the selected jobs now" in page,
        f"status {status}",
    )
    fields = form_fields(page)
    fields.update(action="run_now", _selected_action="trending", index="0", select_across="0")
    status, _, page = staff.post("/admin/personalization/jobrun/", fields)
    check("“Run the selected jobs now” redirects (no broker needed)", status == 302, page[:300])
    finished = False
    deadline = time.monotonic() + 15
    while not finished and time.monotonic() < deadline:
        time.sleep(0.3)
        status, _, page = staff.get("/admin/personalization/jobrun/trending/change/")
        finished = status == 200 and "succeeded" in page
    check("the job run from the admin succeeded in the web process", finished, page[-500:])

    say("6. jobs — the README's commands")
    for args in command_lines(blocks["jobs"]):
        if args[:2] != ["python", "manage.py"]:
            raise Failed(f"step 6 has a line the test cannot run: {shlex.join(args)}")
        output = manage(project, env, *args[2:])
        if "--list" in args:
            listed = re.findall(r"^(\S+)\s", output, re.MULTILINE)
            check(
                "`personalization_jobs --list` lists the jobs",
                {"recommendations", "trending", "rollups"} <= set(listed),
                output[:500],
            )
        elif args[2:] == ["personalization_jobs"]:
            failures = re.findall(r"^\S+: failed", output, re.MULTILINE)
            check("`personalization_jobs` runs what is due", not failures, output)

    say("7. the report, as staff")
    time.sleep(0.5)
    status, _, body = staff.get("/personalization/api/report/")
    report: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        report = json.loads(body)
    check(
        "GET /personalization/api/report/ as staff returns JSON with personalized and control",
        status == 200 and "personalized" in report and "control" in report,
        f"status {status}: {body[:300]}",
    )
    if "personalized" in report and "control" in report:
        groups = (report["personalized"], report["control"])
        seen = sum(int(group.get("visitors", 0)) for group in groups)
        orders = sum(int(group.get("orders", 0)) for group in groups)
        check("the report counts the visitor", seen >= 1, json.dumps(report)[:400])
        check("the report counts the order", orders >= 1, json.dumps(report)[:400])
    status, _, _ = staff.get("/admin/personalization/report/")
    check("the admin's Conversion report answers 200", status == 200, f"status {status}")
    status, _, _ = Client(base).get("/personalization/api/report/")
    check(
        "the report's JSON is refused to anonymous visitors",
        status in (401, 403),
        f"status {status}",
    )

    say("after the jobs ran")
    status, _, page = Client(base).get("/")
    check(
        "a new visitor's home page shows recommendations",
        recommended_products(page) > 0,
        "no data-personalization-product in the home page",
    )
    found = facts(project, env)
    say(f"  database: {json.dumps(found)}")
    check("the segment saved in the admin was counted", found["segment_counted"], str(found))
    check("the order was recorded once", found["orders"] == 1, str(found))
    failed_jobs = [name for name, state in found["jobs"].items() if state == "failed"]
    check("no job failed", not failed_jobs, str(found["jobs"]))


EMAIL_TEST_SETTINGS = """

# The test's own: links lead to the test server; emails are written to files; the email is
# due a minute after the last view (not 90), at any hour; nobody is held out as control.
import os  # noqa: E402
PERSONALIZATION["EMAIL_SITE_URL"] = os.environ["FRESH_SHOP_URL"]
if "MAILERS" in globals():  # Django 6.1's new projects name their mailer
    MAILERS = {{"default": {{
        "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "OPTIONS": {{"file_path": "{outbox}"}},
    }}}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = "{outbox}"
PERSONALIZATION.update({{
    "VISIT_TIMEOUT_MINUTES": 1,
    "EMAIL_FLOWS": {{"welcome": None, "browse_abandonment": -1}},
    "EMAIL_QUIET_HOURS": None,
    "CONTROL_GROUP_PERCENT": 0,
}})
"""


def emails_in(outbox: Path) -> list[str]:
    return [path.read_text() for path in sorted(outbox.glob("*"))] if outbox.exists() else []


def drive_email(project: Path, env: dict[str, str], base: str, outbox: Path) -> None:
    say("8. email — a visitor consents, views a product and leaves")
    shopper = Client(base)
    shopper.get("/")
    shopper.get("/")  # the cookie came back: the visitor is kept
    token = shopper.cookie("csrftoken") or ""  # set by the page with the popup
    check("the page with the popup sets the CSRF cookie the popup posts with", bool(token))
    status, _, body = shopper.request(
        "POST",
        "/personalization/api/signup/",
        {"email": "ada@example.com", "consent": "Email me offers. Unsubscribe any time."},
        headers={"X-CSRFToken": token},
    )
    check("the signup with consent answers 201", status in (200, 201), f"{status}: {body[:300]}")
    status, _, _ = shopper.get("/products/sleeping-bag/")
    check("the product page answers 200", status == 200, f"status {status}")
    time.sleep(2.5)  # the view is written by the server's background writer within a second
    output = manage(project, env, "personalization_jobs", "emails")
    sent = emails_in(outbox)
    check(
        "`personalization_jobs emails` sends one browse-abandonment email",
        len(sent) == 1 and "Sleeping bag" in sent[0] and "To: ada@example.com" in sent[0],
        f"{output}\n{len(sent)} emails: {[text[:400] for text in sent]}",
    )
    manage(project, env, "personalization_jobs", "emails")
    check("running the job again sends nothing more", len(emails_in(outbox)) == 1, output)
    if not sent:
        return
    text = sent[0].replace("=\n", "")
    header = " ".join(str(email.message_from_string(sent[0])["List-Unsubscribe"] or "").split())
    one_click = re.fullmatch(r"<([^>]+)>", header)
    check("the email has a one-click unsubscribe header", one_click is not None, text[:800])
    check(
        "… and List-Unsubscribe-Post", "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in text
    )
    link = re.search(re.escape(base) + r"(/personalization/email/c/[^\s]+/)", text)
    if check("the email links through the shop's tracked link", link is not None, text[:800]):
        status, headers, _ = Client(base).get(link.group(1))
        check(
            "the tracked link redirects to the product page",
            status == 302 and headers.get("Location") == "/products/sleeping-bag/",
            f"status {status}: {headers.get('Location')}",
        )
    if one_click is not None:
        path = one_click.group(1)[len(base) :]
        status, _, body = Client(base).request("POST", path, {"List-Unsubscribe": "One-Click"})
        check(
            "the one-click unsubscribe POST answers 200", status == 200, f"{status}: {body[:300]}"
        )
        output = manage(project, env, "shell", "-c", UNSUBSCRIBED)
        check("the address is unsubscribed", "UNSUBSCRIBED True" in output, output[-300:])


UNSUBSCRIBED = """\
from personalization.models import EmailRecipient
print("UNSUBSCRIBED", EmailRecipient.objects.get().unsubscribed_at is not None)
"""


def main() -> int:
    say(f"python {sys.version.split()[0]} at {sys.executable}")
    try:
        version = importlib.metadata.version("django-personalization")
        django_version = importlib.metadata.version("Django")
    except importlib.metadata.PackageNotFoundError:
        print("django-personalization is not installed in this interpreter", file=sys.stderr)
        return 2
    celery = importlib.util.find_spec("celery") is not None
    say(f"django-personalization {version}, Django {django_version}, celery installed: {celery}")
    tmp = Path(tempfile.mkdtemp(prefix="pzn-fresh-project-"))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_", "PZN_")) and key != "PYTHONPATH"
    }
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    server: subprocess.Popen | None = None
    log = tmp / "server.log"
    try:
        blocks = readme_blocks()
        say(f"README.md: {len(blocks)} marked blocks: {', '.join(blocks)}")
        check_install(blocks["install"] + blocks["install-celery"])
        port = free_port()
        env["FRESH_SHOP_URL"] = f"http://127.0.0.1:{port}"
        project = set_up(tmp, blocks, env)
        server, base = start_server(project, env, log, port)
        drive(project, blocks, env, base)
        drive_email(project, env, base, tmp / "outbox")
    except Failed as exc:
        check("the path could be followed to the end", False, str(exc))
    except Exception:
        check("the run raised no exception", False, traceback.format_exc())
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if log.exists():
            text = log.read_text(errors="replace")
            check("the server log has no traceback", "Traceback" not in text, text[-3000:])
            check(
                "the server answered no 500",
                not re.search(r'" 5\d\d ', text),
                "\n".join(line for line in text.splitlines() if re.search(r'" 5\d\d ', line)),
            )
        if os.environ.get("PZN_FRESH_KEEP"):
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    failed = [name for name, ok, _ in results if not ok]
    say(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    for name in failed:
        print(f"  FAILED: {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
