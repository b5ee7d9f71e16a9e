"""``python manage.py simulate_traffic``: fill the demo shop with simulated visitors, so the
personalization report has something to show.

Every simulated visitor is a ``django.test.Client`` with its own cookies, a realistic browser
user agent (desktop, mobile or tablet) and a client address in its country (a host of the
demo GeoIP network of one of ``personalization.testutils.DEMO_IPS``; some visitors have a
private or unlocated address). Their requests go through the shop's real middleware and
views, at simulated times over the last ``--days`` days (``time_machine.travel``): they land
from search engines, social networks, webmail and newsletters, ad campaigns, a friend's
``?ref=`` link or directly; browse the home page, categories, products and search; see the
personalized banners and the signup popup (or, in the control group, the defaults); click
banners (``POST /personalization/api/events/``), sign up through the popup's API for a coupon,
add to the cart and buy through the real checkout form. Some come back: a visit starts after
more than 30 minutes without a request, so the profiles count their visits. A few crawler
requests (Googlebot) show that bots are ignored.

THE REPORT'S LIFT IS SIMULATED. Whether a visit ends in an order is decided here, by:

    P(purchase in a visit) = min(0.9, base purchase probability of the visitor's persona
                                      × ADVANTAGE   if the visitor is NOT in the control group
                                      × ADVANTAGE   once more, once the visitor clicked
                                                    personalized content (a banner, outside
                                                    the control group))

``--advantage`` (default 1.5) is that ADVANTAGE; the personas' base probabilities (0.02 for
window shoppers to 0.10 for campers) are in ``shop_demo/simulation.py``. ``--advantage 1``,
or ``--aa``, is a true A/A test: personalization then changes nothing about buying, both
groups convert identically in expectation, and whatever difference the report shows is
chance. The measured lift wobbles with chance, especially with a small control group
(``--control-percent`` makes it bigger for the run; the report's sample-ratio check compares
the groups with ``CONTROL_GROUP_PERCENT``, so read such a run with that setting changed too).

When the visits are done, the report's daily roll-ups are rebuilt (the ``rollups`` job with
``full=True``: the simulated rows carry past dates, which an incremental refresh does not
look for), so the admin's report shows the simulated traffic at once; ``--no-rollups`` skips
that and says what to run instead.

Products bought here are given their stock back after each order, so the catalog keeps the
stock ``demo_setup`` gave it. Needs the ``time-machine`` package (``pip install -e '.[dev]'``).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.http.request import validate_host
from django.test import Client, override_settings
from django.utils.formats import number_format

from shop_demo import simulation as sim
from shop_demo.catalog.models import Product
from shop_demo.orders.models import COUNTRIES

HOST = "testserver"  # django.test.Client's default host
EVENTS_URL = "/personalization/api/events/"
SIGNUP_URL = "/personalization/api/signup/"
CONSENT_TEXT = "We'll email you offers. Unsubscribe any time."
#: Demo customers whose referral links some simulated visitors arrive by.
REFERRERS = (
    ("demo-friend-maja", "Maja", "Lindqvist"),
    ("demo-friend-tom", "Tom", "Becker"),
    ("demo-friend-ines", "Inês", "Costa"),
)
FIRST_NAMES = ("Anna", "Ben", "Chloé", "David", "Elif", "Finn", "Grace", "Hugo", "Ida", "Jonas")
LAST_NAMES = ("Schmidt", "Smith", "Martin", "García", "Rossi", "de Vries", "Berg", "Tanaka")
SHIPPING_COUNTRIES = {code for code, _ in COUNTRIES}
DEFAULT_ADVANTAGE = 1.5
ROLLUP_COMMAND = "python manage.py personalization_rollup --full"


@dataclass
class VisitorState:
    """What the simulation remembers of one visitor between their visits."""

    plan: sim.VisitorPlan
    rng: random.Random
    client: Client
    email: str
    in_control_group: bool | None = None
    last_request_at: datetime | None = None
    clicked_personalized: bool = False
    coupon: str | None = None
    popup_done: bool = False
    cart: dict[int, int] = field(default_factory=dict)
    orders: int = 0


@dataclass
class Stats:
    visits: int = 0
    returning_visitors: int = 0
    page_views: int = 0
    other_requests: int = 0
    popups_shown: int = 0
    signups: int = 0
    clicks: int = 0
    add_to_cart: int = 0
    orders: int = 0
    orders_with_coupon: int = 0
    revenue: float = 0.0
    checkout_failures: int = 0
    crawler_requests: int = 0
    crawler_cookies: int = 0
    sources: Counter = field(default_factory=Counter)
    countries: Counter = field(default_factory=Counter)
    devices: Counter = field(default_factory=Counter)


class Command(BaseCommand):
    help = (
        "Simulate shop visitors through the real middleware and views over the last --days "
        "days (needs time-machine: pip install -e '.[dev]'), then rebuild the report's "
        "roll-ups. The personalized side's conversion advantage is simulated: per visit, "
        f"P(purchase) = min({sim.MAX_PURCHASE_PROBABILITY:g}, the persona's base probability "
        f"({min(p.base_purchase for p in sim.PERSONAS):g} to "
        f"{max(p.base_purchase for p in sim.PERSONAS):g}) x --advantage for visitors not in "
        "the control group x --advantage again once they clicked personalized content). "
        "--advantage 1 (--aa) is an A/A test. See shop_demo/simulation.py."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--visitors", type=int, default=300, help="Visitors (default 300).")
        parser.add_argument(
            "--days", type=int, default=14, help="Spread the visits over the last D days."
        )
        parser.add_argument(
            "--advantage",
            type=float,
            default=None,
            help="Multiplies the purchase probability of visitors NOT in the control group, "
            "and again once they clicked personalized content (default "
            f"{DEFAULT_ADVANTAGE:g}; 1 = personalization makes no difference at all).",
        )
        parser.add_argument(
            "--aa",
            action="store_true",
            help="An A/A test: the same as --advantage 1. Both groups convert identically in "
            "expectation; any difference in the report is chance.",
        )
        parser.add_argument(
            "--seed", type=int, default=42, help="Random seed: same seed, same visitor plan."
        )
        parser.add_argument(
            "--control-percent",
            type=float,
            default=None,
            help="CONTROL_GROUP_PERCENT for this run (default: the setting's value).",
        )
        parser.add_argument(
            "--no-rollups",
            action="store_true",
            help="Do not rebuild the report's roll-ups afterwards (the command says what to "
            "run before the report shows the simulated traffic).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            import time_machine
        except ImportError:
            raise CommandError(
                "simulate_traffic needs the time-machine package, which comes with the dev "
                "extra: pip install -e '.[dev]'"
            ) from None
        visitors, days = options["visitors"], options["days"]
        advantage, control_percent = options["advantage"], options["control_percent"]
        if options["aa"]:
            if advantage not in (None, 1):
                raise CommandError(
                    f"--aa means --advantage 1; it cannot go with --advantage {advantage:g}."
                )
            advantage = 1.0
        elif advantage is None:
            advantage = DEFAULT_ADVANTAGE
        if visitors < 1 or days < 1:
            raise CommandError("--visitors and --days must be at least 1.")
        if advantage <= 0:
            raise CommandError("--advantage must be more than 0.")
        if control_percent is not None and not 0 <= control_percent <= 100:
            raise CommandError("--control-percent must be between 0 and 100.")
        if not validate_host(HOST, settings.ALLOWED_HOSTS):
            raise CommandError(
                f"The simulated requests use the host {HOST!r}, which ALLOWED_HOSTS does not "
                "allow: add it (DJANGO_ALLOWED_HOSTS) for the run."
            )
        if not Product.objects.exists():
            raise CommandError(
                "The catalog is empty: run `python manage.py demo_setup` first, then try again."
            )
        self.ensure_targeting()

        personalization = dict(getattr(settings, "PERSONALIZATION", {}))
        # Referral rewards are emailed: keep the mails in memory, not on an SMTP server
        # (through MAILERS where Django has it: EMAIL_BACKEND is deprecated there).
        locmem = "django.core.mail.backends.locmem.EmailBackend"
        overrides: dict[str, Any] = (
            {"MAILERS": {"default": {"BACKEND": locmem}}}
            if hasattr(mail, "mailers")
            else {"EMAIL_BACKEND": locmem}
        )
        if control_percent is not None:
            overrides["PERSONALIZATION"] = {
                **personalization,
                "CONTROL_GROUP_PERCENT": control_percent,
            }
        self.warn_without_geoip(personalization)
        with (
            override_settings(**overrides),
            quiet_app_logs(options["verbosity"]),
            relaxed_sqlite_sync(),
        ):
            from personalization.conf import app_settings

            simulation = Simulation(
                self,
                time_machine=time_machine,
                visitors=visitors,
                days=days,
                advantage=advantage,
                seed=options["seed"],
            )
            started = time.perf_counter()
            simulation.run()
            elapsed = time.perf_counter() - started
            control = float(app_settings.CONTROL_GROUP_PERCENT)
        simulation.report(elapsed, control_percent=control, seed=options["seed"])
        self.check_control_share(control)
        self.refresh_rollups(skip=options["no_rollups"])

    def check_control_share(self, simulated: float) -> None:
        """A holdout of another size than the setting's makes the report's sample-ratio check
        ring: it compares the groups with CONTROL_GROUP_PERCENT, which is right for a shop."""
        from personalization.conf import app_settings

        configured = float(app_settings.CONTROL_GROUP_PERCENT)
        if simulated != configured:
            self.stdout.write(
                self.style.WARNING(
                    f"The control group was {simulated:g}% for this run, but "
                    f"CONTROL_GROUP_PERCENT is {configured:g}%: the report's sample-ratio "
                    "check compares the groups with the setting and will flag this traffic. "
                    f"Set CONTROL_GROUP_PERCENT to {simulated:g} while reading it."
                )
            )

    def refresh_rollups(self, *, skip: bool) -> None:
        """The simulated rows carry past dates, which an incremental refresh of the report's
        roll-ups does not look for: rebuild them, so the report shows the traffic at once."""
        from personalization import jobs
        from personalization.conf import app_settings

        if not app_settings.REPORT_ROLLUPS:
            self.stdout.write(
                "REPORT_ROLLUPS is off: the report reads the raw rows, simulated traffic included."
            )
            return
        if skip:
            self.stdout.write(
                self.style.WARNING(
                    f"Roll-ups not rebuilt (--no-rollups): run `{ROLLUP_COMMAND}` before "
                    "reading the report, or it leaves out the simulated traffic."
                )
            )
            return
        try:
            result = jobs.run("rollups", full=True)
        except Exception as error:
            raise CommandError(
                f"The traffic was simulated, but rebuilding the report's roll-ups failed "
                f"({error}); run `{ROLLUP_COMMAND}` before reading the report."
            ) from error
        self.stdout.write(
            f"Rebuilt the report's roll-ups ({result['visitors']:,} visitors, "
            f"{result['seconds']:.1f}s): the report shows the simulated traffic now."
        )

    def ensure_targeting(self) -> None:
        """The demo's segments and banners, when the database has none (demo_setup's).
        Placements alone do not count: pages create the ones they use."""
        from personalization.models import Banner
        from shop_demo.catalog.demo_targeting import setup_targeting

        if not Banner.objects.exists():
            new_segments, new_banners = setup_targeting()
            self.stdout.write(
                f"Created the demo targeting: {new_segments} segments, {new_banners} banners."
            )

    def warn_without_geoip(self, personalization: dict) -> None:
        from pathlib import Path

        path = personalization.get("GEOIP_PATH")
        if not path or not Path(path).exists():
            self.stdout.write(
                self.style.WARNING(
                    f"No GeoIP database at {path!r}: visitors will have no country "
                    "(python manage.py demo_setup writes the demo's)."
                )
            )


@contextmanager
def quiet_app_logs(verbosity: int) -> Any:
    """At the default verbosity the app's INFO lines (referral rewards...) would drown the
    progress lines; -v 2 shows them."""
    logger = logging.getLogger("personalization")
    level = logger.level
    if verbosity < 2:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextmanager
def relaxed_sqlite_sync() -> Any:
    """On SQLite, skip the fsync of every commit for this run (``PRAGMA synchronous=OFF``,
    on this connection only): thousands of small commits otherwise spend most of the run
    waiting for the disk. A crash of the program loses nothing; only an OS crash or power
    loss during the run could."""
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        (previous,) = cursor.fetchone()
        cursor.execute("PRAGMA synchronous=OFF")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA synchronous={int(previous)}")


class Simulation:
    """One run: plans the visitors, plays their visits in time order, counts what happened."""

    def __init__(
        self,
        command: Command,
        *,
        time_machine: Any,
        visitors: int,
        days: int,
        advantage: float,
        seed: int,
    ) -> None:
        from personalization.testutils import DEMO_IPS

        self.command = command
        self.out = command.stdout
        self.time_machine = time_machine
        self.count = visitors
        self.days = days
        self.advantage = advantage
        self.seed = seed
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.stats = Stats()
        self.products = {
            product.pk: product
            for product in Product.objects.select_related("category").order_by("pk")
        }
        by_slug = {product.slug: product for product in self.products.values()}
        self.by_slug = by_slug
        categories: dict[str, list[str]] = {}
        for product in self.products.values():
            categories.setdefault(product.category.slug, []).append(product.slug)
        self.catalog = sim.CatalogSnapshot(
            categories=tuple(sorted(categories)),
            products_by_category={slug: tuple(slugs) for slug, slugs in categories.items()},
        )
        self.buyable = {
            slug: [
                by_slug[product_slug].pk for product_slug in slugs if by_slug[product_slug].in_stock
            ]
            for slug, slugs in categories.items()
        }
        self.plans = sim.plan_visitors(
            visitors, days, self.now, random.Random(seed), self.catalog, DEMO_IPS
        )
        # Who the referral links belong to: demo customers, and later the visitors who sign
        # up (their signup gives them a link to share).
        self.referral_codes = self.referrer_codes()
        run_tag = uuid.uuid4().hex[:8]  # signup emails must be new in every run
        self.states = [
            VisitorState(
                plan=plan,
                rng=random.Random(f"{seed}:{plan.index}"),
                client=Client(HTTP_USER_AGENT=plan.user_agent, REMOTE_ADDR=plan.address),
                email=f"visitor{plan.index}.{run_tag}@example.com",
            )
            for plan in self.plans
        ]

    def referrer_codes(self) -> list[str]:
        from personalization.referrals import code_for_user

        User = get_user_model()
        codes = []
        for username, first, last in REFERRERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@example.com",
                },
            )
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            codes.append(code_for_user(user).code)
        return codes

    # The run -------------------------------------------------------------------------------
    def run(self) -> None:
        agenda: list[tuple[datetime, int, int]] = [
            (visit.start, plan.index, number)
            for plan in self.plans
            for number, visit in enumerate(plan.visits)
        ]
        crawls = self.plan_crawls()
        agenda += [(moment, -1, number) for number, moment in enumerate(crawls)]
        agenda.sort()
        total = sum(1 for _, index, _ in agenda if index >= 0)
        self.out.write(
            f"Simulating {self.count} visitors ({total} visits) over the last {self.days} "
            f"days, seed {self.seed}, advantage {self.advantage:g}..."
        )
        step = max(1, total // 10)
        done = 0
        for moment, index, number in agenda:
            if index < 0:
                self.crawl(number, moment)
                continue
            state = self.states[index]
            self.visit(state, number, state.plan.visits[number])
            done += 1
            if done % step == 0 or done == total:
                self.out.write(
                    f"  {done}/{total} visits, {self.stats.page_views} page views, "
                    f"{self.stats.signups} signups, {self.stats.orders} orders"
                )

    def plan_crawls(self) -> list[datetime]:
        rng = random.Random(f"{self.seed}:crawlers")
        start = self.now - timedelta(days=self.days)
        end = self.now - timedelta(minutes=30)
        return sorted(
            sim.random_moment(rng, start, end) for _ in range(max(2, min(10, self.count // 40)))
        )

    def crawl(self, number: int, moment: datetime) -> None:
        """A crawler walks a few pages with one client: were it tracked, it would get a
        cookie and a profile; it gets neither."""
        rng = random.Random(f"{self.seed}:crawl:{number}")
        client = Client(
            HTTP_USER_AGENT=rng.choice(sim.CRAWLER_USER_AGENTS), REMOTE_ADDR="66.249.66.1"
        )
        slugs = list(self.by_slug)
        paths = ["/", *(f"/categories/{slug}/" for slug in self.catalog.categories[:2])]
        paths += [f"/products/{slug}/" for slug in rng.sample(slugs, min(3, len(slugs)))]
        with self.time_machine.travel(moment, tick=False) as clock:
            for path in paths:
                client.get(path)
                self.stats.crawler_requests += 1
                clock.shift(2)
        if "pzn_vid" in client.cookies:
            self.stats.crawler_cookies += 1

    def visit(self, state: VisitorState, number: int, plan: sim.VisitPlan) -> None:
        start = plan.start
        if state.last_request_at is not None:
            # Never let a visit run into the previous one: 31 minutes apart at least.
            start = max(start, state.last_request_at + timedelta(minutes=31))
        rng = state.rng
        persona = state.plan.persona
        stats = self.stats
        stats.visits += 1
        stats.sources[plan.landing.source] += 1
        if number == 0:
            stats.countries[state.plan.country or "unknown"] += 1
            stats.devices[state.plan.device] += 1
        elif number == 1:
            stats.returning_visitors += 1
        with self.time_machine.travel(start, tick=False) as clock:
            ref = rng.choice(self.referral_codes) if plan.landing.source == "referral" else None
            extra = {"HTTP_REFERER": plan.landing.referer} if plan.landing.referer else {}
            response = self.get(state, plan.landing.url(ref), **extra)
            if state.in_control_group is None:
                state.in_control_group = bool(response.wsgi_request.visitor.in_control_group)
            next_path = self.look_at(state, response, clock)
            for _ in range(plan.pages - 1):
                clock.shift(sim.think_time(rng))
                path = next_path or self.pick_page(state)
                response = self.get(state, path)
                next_path = self.look_at(state, response, clock)
                if path.startswith("/products/") and response.status_code == 200:
                    self.maybe_add_to_cart(state, path, clock, persona.add_to_cart)
            probability = sim.purchase_probability(
                persona,
                personalized=not state.in_control_group,
                clicked=state.clicked_personalized,
                advantage=self.advantage,
            )
            if rng.random() < probability:
                clock.shift(sim.think_time(rng))
                self.buy(state, clock)
            state.last_request_at = datetime.now(UTC)

    # Pages ---------------------------------------------------------------------------------
    def get(self, state: VisitorState, path: str, **extra: Any) -> Any:
        response = state.client.get(path, **extra)
        if response.status_code == 200 and response.get("Content-Type", "").startswith("text/html"):
            self.stats.page_views += 1
        else:
            self.stats.other_requests += 1
        return response

    def post(self, state: VisitorState, path: str, data: Any, **extra: Any) -> Any:
        self.stats.other_requests += 1
        return state.client.post(path, data, **extra)

    def post_json(self, state: VisitorState, path: str, data: dict) -> Any:
        token = state.client.cookies.get("csrftoken")
        headers = {"HTTP_X_CSRFTOKEN": token.value} if token is not None else {}
        return self.post(state, path, data, content_type="application/json", **headers)

    def pick_page(self, state: VisitorState) -> str:
        rng = state.rng
        persona = state.plan.persona
        category = str(
            sim.weighted_choice(rng, sim.category_weights(persona, self.catalog.categories))
        )
        roll = rng.random()
        if roll < 0.5:
            products = self.catalog.products_by_category.get(category) or ()
            if products:
                return f"/products/{rng.choice(products)}/"
        if roll < 0.75:
            return f"/categories/{category}/"
        if roll < 0.9:
            return f"/search/?q={rng.choice(persona.searches).replace(' ', '+')}"
        return "/"

    def look_at(self, state: VisitorState, response: Any, clock: Any) -> str | None:
        """React to the personalized content of a page: the popup, a banner worth a click.
        Returns the page a clicked banner leads to."""
        if response.status_code != 200 or b"data-personalization-exposure" not in response.content:
            return None
        rng = state.rng
        next_path = None
        for shown in sim.shown_content(response.content.decode()):
            if shown.is_popup:
                if not state.popup_done:
                    self.answer_popup(state, shown, clock)
                continue
            if next_path is None and rng.random() < sim.CLICK_PROBABILITY:
                clock.shift(rng.uniform(2, 12))
                reply = self.post_json(
                    state, EVENTS_URL, {"type": "click", "exposure": shown.exposure_id}
                )
                if reply.status_code == 204:
                    self.stats.clicks += 1
                    if not state.in_control_group:
                        state.clicked_personalized = True
                next_path = shown.link
        return next_path

    def answer_popup(self, state: VisitorState, shown: sim.Shown, clock: Any) -> None:
        """The popup opens after its delay: the visitor signs up, closes it, or ignores it."""
        rng = state.rng
        state.popup_done = True
        clock.shift(8)
        self.post_json(state, EVENTS_URL, {"type": "popup_shown", "exposure": shown.exposure_id})
        self.stats.popups_shown += 1
        clock.shift(rng.uniform(3, 20))
        if rng.random() < state.plan.persona.signup:
            reply = self.post_json(
                state, SIGNUP_URL, {"email": state.email, "consent": CONSENT_TEXT}
            )
            if reply.status_code == 201:
                body = reply.json()
                state.coupon = body.get("coupon_code")
                self.stats.signups += 1
                link = body.get("referral_link") or ""
                if "?ref=" in link:  # friends may now arrive by this visitor's link
                    self.referral_codes.append(link.rsplit("?ref=", 1)[1])
        elif rng.random() < sim.POPUP_DISMISS_PROBABILITY:
            self.post_json(
                state, EVENTS_URL, {"type": "popup_dismissed", "exposure": shown.exposure_id}
            )

    # Cart and checkout -----------------------------------------------------------------
    def maybe_add_to_cart(self, state: VisitorState, path: str, clock: Any, chance: float) -> None:
        product = self.by_slug.get(path.split("/")[2])
        if product is None or not product.in_stock or state.rng.random() >= chance:
            return
        self.add_to_cart(state, product, clock)

    def add_to_cart(self, state: VisitorState, product: Product, clock: Any) -> None:
        clock.shift(state.rng.uniform(5, 30))
        quantity = 2 if state.rng.random() < 0.15 else 1
        reply = self.post(state, f"/cart/add/{product.pk}/", {"quantity": quantity})
        if reply.status_code == 302:
            state.cart[product.pk] = state.cart.get(product.pk, 0) + quantity
            self.stats.add_to_cart += 1
            self.get(state, reply["Location"])  # the browser follows to the cart

    def buy(self, state: VisitorState, clock: Any) -> None:
        rng = state.rng
        if not state.cart:
            category = str(
                sim.weighted_choice(
                    rng, sim.category_weights(state.plan.persona, self.catalog.categories)
                )
            )
            choices = self.buyable.get(category) or [
                pk for pks in self.buyable.values() for pk in pks
            ]
            if not choices:
                return
            product = self.products[rng.choice(choices)]
            self.get(state, product.get_absolute_url())
            self.add_to_cart(state, product, clock)
            if not state.cart:
                return
        clock.shift(sim.think_time(rng))
        page = self.get(state, "/checkout/")
        if page.status_code != 200:
            state.cart.clear()  # the shop says the cart is empty (another device bought it?)
            return
        html = page.content.decode()
        offered = sim.input_value(html, "coupon") or ""  # a referred friend's welcome coupon
        coupon = offered
        if not coupon and state.coupon and rng.random() < sim.COUPON_USE_PROBABILITY:
            coupon = state.coupon
        country = state.plan.country if state.plan.country in SHIPPING_COUNTRIES else "DE"
        form = {
            "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            "email": state.email,
            "street": f"{rng.randint(1, 120)} Market Street",
            "postal_code": f"{rng.randint(10000, 99999)}",
            "city": "Springfield",
            "country": country,
            "coupon": coupon,
            "token": sim.input_value(html, "token") or "",
        }
        clock.shift(rng.uniform(30, 120))
        stock = dict(Product.objects.filter(pk__in=list(state.cart)).values_list("pk", "stock"))
        reply = self.post(state, "/checkout/", form)
        if reply.status_code == 302 and not reply["Location"].startswith("/orders/") and coupon:
            # The coupon was refused (used up, expired): try once more without it.
            self.get(state, reply["Location"])
            page = self.get(state, "/checkout/")
            if page.status_code == 200:
                form.update(coupon="", token=sim.input_value(page.content.decode(), "token") or "")
                reply = self.post(state, "/checkout/", form)
            coupon = ""
        if reply.status_code == 302 and reply["Location"].startswith("/orders/"):
            self.restock(stock)
            self.record_order(state, coupon)
            self.get(state, reply["Location"])  # the confirmation page
        else:
            self.stats.checkout_failures += 1

    def record_order(self, state: VisitorState, coupon: str) -> None:
        from shop_demo.orders.models import Order

        order = Order.objects.filter(email=state.email).order_by("-pk").first()
        self.stats.orders += 1
        state.orders += 1
        if order is not None:
            self.stats.revenue += float(order.total)
        if coupon:
            self.stats.orders_with_coupon += 1
            if coupon == state.coupon:
                state.coupon = None
        state.cart.clear()

    @staticmethod
    def restock(stock: dict[int, int]) -> None:
        """Give the bought products their stock back, so the catalog stays as seeded."""
        for pk, quantity in stock.items():
            Product.objects.filter(pk=pk).update(stock=quantity)

    # Summary -------------------------------------------------------------------------------
    def report(self, elapsed: float, *, control_percent: float, seed: int) -> None:
        stats, write = self.stats, self.out.write
        groups = {True: [0, 0], False: [0, 0]}  # in control group -> [buyers, visitors]
        for state in self.states:
            if state.in_control_group is None:
                continue
            group = groups[state.in_control_group]
            group[1] += 1
            group[0] += state.orders > 0
        personalized, control = tuple(groups[False]), tuple(groups[True])

        def count(value: float) -> str:
            return number_format(value, force_grouping=True)

        write("")
        write(self.command.style.SUCCESS(f"Done in {elapsed:.1f}s."))
        write(
            f"  visitors          {count(self.count)} ({count(stats.returning_visitors)} came back)"
        )
        write(f"  visits            {count(stats.visits)}")
        write(
            f"  page views        {count(stats.page_views)} "
            f"(+ {count(stats.other_requests)} API calls, form posts and redirects)"
        )
        write(f"  visits came from  {self.counter_line(stats.sources)}")
        write(f"  countries         {self.counter_line(stats.countries)}")
        write(f"  devices           {self.counter_line(stats.devices)}")
        write(
            f"  signup popup      shown {count(stats.popups_shown)} times, "
            f"{count(stats.signups)} signups (each with a coupon)"
        )
        write(f"  banner clicks     {count(stats.clicks)}")
        write(f"  added to cart     {count(stats.add_to_cart)} times")
        write(
            f"  orders            {count(stats.orders)} (€{stats.revenue:,.2f}; "
            f"{count(stats.orders_with_coupon)} with a coupon"
            + (f"; {stats.checkout_failures} checkouts failed" if stats.checkout_failures else "")
            + ")"
        )
        write(
            f"  crawler requests  {count(stats.crawler_requests)} (Googlebot: no profile, "
            + (
                "no cookie)"
                if not stats.crawler_cookies
                else self.command.style.ERROR(f"but {stats.crawler_cookies} got a cookie!)")
            )
        )
        write(f"  conversion        visitors who ordered (control group: {control_percent:g}%)")
        write(
            f"    personalized    {personalized[0]}/{personalized[1]} = "
            f"{sim.percent(*personalized)}"
        )
        write(f"    control         {control[0]}/{control[1]} = {sim.percent(*control)}")
        ratio = sim.rate_ratio(personalized, control)
        if ratio is not None:
            write(f"    measured lift   x{ratio:.2f}")
        if self.advantage == 1:
            explained = (
                "This was an A/A run (--advantage 1): personalization changed nothing about "
                "buying, so both groups convert alike in expectation and any difference "
                "above is chance (shop_demo/simulation.py)."
            )
        else:
            explained = (
                "This lift is simulated: non-control visitors bought with "
                f"{self.advantage:g}x the probability (--advantage), {self.advantage:g}x again "
                "once they clicked personalized content; chance does the rest "
                "(shop_demo/simulation.py)."
            )
        write(self.command.style.WARNING(f"{explained} Same --seed {seed}, same visitor plan."))

    @staticmethod
    def counter_line(counter: Counter) -> str:
        return ", ".join(f"{key} {value}" for key, value in counter.most_common())
