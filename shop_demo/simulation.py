"""Plain helpers of ``manage.py simulate_traffic``: who the simulated visitors are, when and
how they arrive, and how their purchase probability is formed.

Nothing here touches the database or sends a request; the command
(``shop_demo/catalog/management/commands/simulate_traffic.py``) does that through the real
middleware and views. Everything random is drawn from ``random.Random`` instances seeded by
the caller, so one seed gives one plan.

How a visit ends in a purchase — the report's lift is *simulated*, these numbers make it:

    P(purchase in a visit) = min(MAX_PURCHASE_PROBABILITY,
                                 persona.base_purchase
                                 × advantage    (only for visitors NOT in the control group)
                                 × advantage    (once more, only once the visitor has clicked
                                                 personalized content, i.e. a banner shown
                                                 to a visitor outside the control group))

``advantage`` is the command's ``--advantage`` (default 1.5): how much personalization
multiplies the chance to buy, once for being shown it and once more for engaging with it.
The expected lift is therefore a little above ``advantage`` when it is above 1 (and a
little below when it is below 1: personalization that hurts).

``--advantage 1`` (or ``--aa``) is a true A/A test: then nothing in this formula depends on
the group or on clicks, so both groups convert identically in expectation and every
difference the report shows is chance. The groups still see different pages (the control
group sees the default banners, whose clicks are recorded, and no signup popup), but what
they see makes no one buy: coupons from the popup are used at checkout, never a reason to
order. Everything else (which pages, clicks, signups, carts) follows the personas below.
"""

from __future__ import annotations

import ipaddress
import math
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import unescape
from urllib.parse import urlencode

# How a visit turns into a purchase (see the module docstring) ----------------------------
#: Upper bound of the per-visit purchase probability, whatever the factors.
MAX_PURCHASE_PROBABILITY = 0.9
#: Chance that a visitor clicks a banner a page showed them (both groups alike; the control
#: group's clicks are on the default banner and change nothing).
CLICK_PROBABILITY = 0.15
#: Chance that a visitor who did not sign up closes the popup (the rest ignore it).
POPUP_DISMISS_PROBABILITY = 0.6
#: Chance that a buyer with a signup coupon types it in at checkout.
COUPON_USE_PROBABILITY = 0.8

#: A new visit starts after 30 minutes without a request (VISIT_TIMEOUT_MINUTES); planned
#: visits of one visitor are at least this far apart.
MIN_GAP_BETWEEN_VISITS = timedelta(hours=1)
#: Seconds between two requests of a visit.
THINK_TIME_SECONDS = (8.0, 75.0)


@dataclass(frozen=True, eq=False)  # hashed by identity: it holds a dict
class Persona:
    """A kind of shopper: what they look at and how likely they buy and sign up."""

    name: str
    weight: float
    #: Category slug -> relative weight when they pick something to look at.
    categories: dict[str, float]
    searches: tuple[str, ...]
    #: Probability of buying in one visit, before the advantage (see the module docstring).
    base_purchase: float
    #: Probability of signing up when the signup popup is shown.
    signup: float
    #: Probability of adding the product to the cart, per product page.
    add_to_cart: float
    #: Page views per visit (min, max), the landing page included.
    pages: tuple[int, int]
    #: Probability of coming back at all, and the most visits they make.
    returns: float
    max_visits: int


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "camper",
        0.28,
        {"camping": 8, "hiking": 3, "cycling": 1, "coffee-tea": 1},
        ("tent", "stove", "sleeping bag", "headlamp", "lantern"),
        base_purchase=0.10,
        signup=0.25,
        add_to_cart=0.25,
        pages=(3, 7),
        returns=0.6,
        max_visits=4,
    ),
    Persona(
        "coffee lover",
        0.18,
        {"coffee-tea": 6, "kitchen": 3, "home": 1},
        ("coffee", "espresso", "tea", "mug", "grinder"),
        base_purchase=0.09,
        signup=0.2,
        add_to_cart=0.25,
        pages=(2, 6),
        returns=0.5,
        max_visits=4,
    ),
    Persona(
        "homemaker",
        0.14,
        {"home": 4, "kitchen": 4, "garden": 3, "books": 1},
        ("pan", "lamp", "planter", "knife"),
        base_purchase=0.06,
        signup=0.2,
        add_to_cart=0.2,
        pages=(2, 6),
        returns=0.4,
        max_visits=3,
    ),
    Persona(
        "gadget fan",
        0.12,
        {"electronics": 5, "fitness": 2, "cycling": 2},
        ("battery", "charger", "light", "speaker"),
        base_purchase=0.06,
        signup=0.15,
        add_to_cart=0.2,
        pages=(2, 6),
        returns=0.4,
        max_visits=3,
    ),
    Persona(
        "deal hunter",
        0.10,
        {},  # everything
        ("sale", "new", "set", "gift"),
        base_purchase=0.08,
        signup=0.6,
        add_to_cart=0.3,
        pages=(3, 7),
        returns=0.5,
        max_visits=3,
    ),
    Persona(
        "window shopper",
        0.18,
        {},
        ("tent", "coffee", "book", "bike"),
        base_purchase=0.02,
        signup=0.08,
        add_to_cart=0.1,
        pages=(2, 5),
        returns=0.3,
        max_visits=2,
    ),
)

# Devices: realistic browser user agents --------------------------------------------------
USER_AGENTS: tuple[tuple[str, float, str], ...] = (
    (
        "desktop",
        0.22,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
    ),
    (
        "desktop",
        0.12,
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/18.1 Safari/605.1.15",
    ),
    (
        "desktop",
        0.08,
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    ),
    (
        "desktop",
        0.05,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    ),
    (
        "mobile",
        0.22,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    ),
    (
        "mobile",
        0.20,
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
    ),
    (
        "tablet",
        0.07,
        "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    ),
    (
        "tablet",
        0.04,
        "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
    ),
)

CRAWLER_USER_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html)",
)

# Where visitors come from ----------------------------------------------------------------
#: Country code -> weight; None: an address without a location (private, or public but not
#: in the demo GeoIP database).
COUNTRY_WEIGHTS: dict[str | None, float] = {
    "DE": 20,
    "GB": 12,
    "US": 12,
    "FR": 8,
    "NL": 6,
    "SE": 6,
    "ES": 5,
    "IT": 5,
    "CA": 4,
    "AU": 3,
    "JP": 2,
    "BR": 2,
    None: 8,
}
UNLOCATED_NETWORKS = (
    "192.168.0.0/16",  # private: a visitor on the shop's own network, or a misconfigured proxy
    "10.0.0.0/8",
    "45.33.32.0/24",  # public, but not in the demo GeoIP database
    "154.16.192.0/24",
)

#: Source of a first visit -> weight.
FIRST_VISIT_SOURCES = {
    "search": 30,
    "direct": 18,
    "social": 15,
    "campaign": 12,
    "email": 8,
    "referral": 9,
    "other": 8,
}
#: Source of a return visit -> weight: more direct and newsletter traffic.
RETURN_VISIT_SOURCES = {
    "direct": 38,
    "search": 20,
    "email": 20,
    "social": 10,
    "campaign": 12,
}

SEARCH_ENGINES = (
    "https://www.google.com/",
    "https://www.google.de/",
    "https://www.google.co.uk/",
    "https://www.google.fr/",
    "https://www.bing.com/search?q=camping+gear",
    "https://duckduckgo.com/",
)
SOCIAL_REFERRERS = (
    "https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example%2F",
    "https://m.facebook.com/",
    "https://l.instagram.com/",
    "https://www.instagram.com/",
    "https://www.pinterest.com/pin/4829910293/",
    "https://www.pinterest.de/",
)
WEBMAIL_REFERRERS = (
    "https://mail.google.com/",
    "https://outlook.live.com/",
    "https://mail.yahoo.com/",
    "https://mail.proton.me/",
)
OTHER_REFERRERS = (
    "https://www.outdoor-blog.example/best-tents-of-the-year",
    "https://coffee-forum.example/threads/grinders",
)
CAMPAIGNS = (
    # (utm_source, utm_medium, utm_campaign, landing category)
    ("google", "cpc", "summer-camping", "camping"),
    ("facebook", "paid_social", "coffee-week", "coffee-tea"),
    ("partner-blog", "display", "trail-season", "hiking"),
)
NEWSLETTERS = ("weekly-picks", "spring-sale", "new-arrivals")


# Plans -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Landing:
    """How a visit arrives: the source the app should classify, the URL and the Referer.

    ``path`` is the landing path without query; ``params`` its query string. A referral
    landing's ``ref`` code is filled in when the visit runs (from the codes known then).
    """

    source: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    referer: str | None = None

    def url(self, ref: str | None = None) -> str:
        params = dict(self.params)
        if self.source == "referral" and ref:
            params["ref"] = ref
        return f"{self.path}?{urlencode(params)}" if params else self.path


@dataclass(frozen=True)
class VisitPlan:
    start: datetime
    landing: Landing
    pages: int


@dataclass(frozen=True)
class VisitorPlan:
    index: int
    persona: Persona
    country: str | None
    address: str
    device: str
    user_agent: str
    visits: tuple[VisitPlan, ...]


@dataclass(frozen=True)
class CatalogSnapshot:
    """What the planner needs of the catalog: category slugs and their products' slugs."""

    categories: tuple[str, ...]
    products_by_category: dict[str, tuple[str, ...]]


def weighted_choice(rng: random.Random, weights: dict) -> object:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[key] for key in keys])[0]


def category_weights(persona: Persona, categories: tuple[str, ...]) -> dict[str, float]:
    """The persona's weights over the categories that exist (all alike when none match)."""
    weights = {slug: persona.categories.get(slug, 0.0) for slug in categories}
    if not any(weights.values()):
        return dict.fromkeys(categories, 1.0)
    # A little curiosity: every category keeps a small chance.
    return {slug: weight or 0.15 for slug, weight in weights.items()}


def address_for(country: str | None, rng: random.Random, demo_ips: dict[str, str]) -> str:
    """A client address in ``country``: a host of the demo GeoIP network that holds the
    country's ``DEMO_IPS`` address (so visitors of one country do not all share one address
    and one rate limit); for None, a private or unlocated address."""
    if country is not None and country in demo_ips:
        network = ipaddress.ip_network(f"{demo_ips[country]}/24", strict=False)
        return str(network.network_address + rng.randint(2, 254))
    network = ipaddress.ip_network(rng.choice(UNLOCATED_NETWORKS))
    return str(network.network_address + rng.randint(2, min(network.num_addresses - 2, 65000)))


def random_moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A moment in [start, end), more often by day than at night (Central European hours)."""
    span = (end - start).total_seconds()
    moment = start
    for _ in range(6):
        moment = start + timedelta(seconds=rng.random() * span)
        hour = (moment.hour + 1) % 24  # UTC+1, close enough for a demo
        if hour >= 7 or rng.random() < 0.25:
            break
    return moment


def make_landing(
    source: str, rng: random.Random, persona: Persona, catalog: CatalogSnapshot
) -> Landing:
    weights = category_weights(persona, catalog.categories)
    category = str(weighted_choice(rng, weights))
    products = catalog.products_by_category.get(category) or ()
    product_path = f"/products/{rng.choice(products)}/" if products else "/"
    category_path = f"/categories/{category}/"
    if source == "search":
        path = product_path if rng.random() < 0.6 else category_path
        return Landing("search", path, referer=rng.choice(SEARCH_ENGINES))
    if source == "social":
        path = product_path if rng.random() < 0.7 else "/"
        return Landing("social", path, referer=rng.choice(SOCIAL_REFERRERS))
    if source == "email":
        if rng.random() < 0.5:
            return Landing("email", "/", referer=rng.choice(WEBMAIL_REFERRERS))
        params = {
            "utm_source": "newsletter",
            "utm_medium": "email",
            "utm_campaign": rng.choice(NEWSLETTERS),
        }
        return Landing("email", rng.choice(("/", category_path)), params)
    if source == "campaign":
        utm_source, medium, campaign, landing_category = rng.choice(CAMPAIGNS)
        if landing_category not in catalog.categories:
            landing_category = category
        params = {"utm_source": utm_source, "utm_medium": medium, "utm_campaign": campaign}
        if utm_source == "google" and rng.random() < 0.5:
            params["gclid"] = f"Cj0KCQ{rng.getrandbits(48):012x}"
        return Landing("campaign", f"/categories/{landing_category}/", params)
    if source == "referral":
        return Landing("referral", "/")
    if source == "other":
        return Landing("other", product_path, referer=rng.choice(OTHER_REFERRERS))
    return Landing("direct", "/")


def plan_visitors(
    count: int,
    days: int,
    now: datetime,
    rng: random.Random,
    catalog: CatalogSnapshot,
    demo_ips: dict[str, str],
) -> list[VisitorPlan]:
    """Who comes, from where, on which device, when and through which door.

    Depends only on its arguments: the same seed and catalog give the same plan, whatever
    happens when it runs.
    """
    window_start = now - timedelta(days=days)
    # Every visit starts at least 30 minutes before now, so it ends before now.
    window_end = now - timedelta(minutes=30)
    plans = []
    personas = {persona: persona.weight for persona in PERSONAS}
    devices = {(device, ua): weight for device, weight, ua in USER_AGENTS}
    for index in range(count):
        persona = weighted_choice(rng, personas)
        assert isinstance(persona, Persona)
        country = weighted_choice(rng, COUNTRY_WEIGHTS)
        address = address_for(country, rng, demo_ips)  # type: ignore[arg-type]
        device, user_agent = weighted_choice(rng, devices)  # type: ignore[misc]
        wanted = 1
        if rng.random() < persona.returns:
            wanted = rng.randint(2, persona.max_visits)
        start = random_moment(rng, window_start, window_end)
        visits = []
        for number in range(wanted):
            if number:
                # Return after an hour up to a few days (exponential: most come back soon).
                gap = MIN_GAP_BETWEEN_VISITS + timedelta(hours=rng.expovariate(1 / 30))
                start = start + gap
                if start >= window_end:
                    break
            sources = RETURN_VISIT_SOURCES if number else FIRST_VISIT_SOURCES
            source = str(weighted_choice(rng, sources))
            landing = make_landing(source, rng, persona, catalog)
            pages = rng.randint(*persona.pages)
            visits.append(VisitPlan(start, landing, pages))
        plans.append(
            VisitorPlan(index, persona, country, address, device, user_agent, tuple(visits))  # type: ignore[arg-type]
        )
    return plans


def purchase_probability(
    persona: Persona, personalized: bool, clicked: bool, advantage: float
) -> float:
    """The chance that a visit ends in an order (see the module docstring).

    ``personalized``: the visitor is outside the control group; ``clicked``: they have
    clicked personalized content (never true in the control group). With ``advantage`` 1 the
    result is the persona's base probability whatever the other arguments.
    """
    probability = persona.base_purchase
    if personalized:
        probability *= advantage
        if clicked:
            probability *= advantage
    return min(MAX_PURCHASE_PROBABILITY, max(0.0, probability))


def think_time(rng: random.Random) -> float:
    low, high = THINK_TIME_SECONDS
    return low + (high - low) * rng.random()


# Reading pages -----------------------------------------------------------------------------
_EXPOSURE_TAG_RE = re.compile(
    r"<[a-z]+\b(?P<attrs>[^>]*\bdata-personalization-exposure=\"(?P<id>[0-9a-f-]{36})\"[^>]*)>",
    re.IGNORECASE,
)
_PLACEMENT_RE = re.compile(r"\bdata-personalization-placement=\"([^\"]*)\"")
_HREF_RE = re.compile(r"\bhref=\"(/[^\"#]*)\"")


@dataclass(frozen=True)
class Shown:
    """Personalized content a page showed: a banner of a placement, or the signup popup."""

    exposure_id: str
    placement: str  # "signup-popup" for the popup
    link: str | None  # the banner's call to action (a path of the shop), if any

    @property
    def is_popup(self) -> bool:
        return self.placement == "signup-popup"


def shown_content(html: str) -> list[Shown]:
    """Every element of the page that carries a ``data-personalization-exposure`` id."""
    found = []
    matches = list(_EXPOSURE_TAG_RE.finditer(html))
    for position, match in enumerate(matches):
        attrs = match.group("attrs")
        if "data-pzn-popup" in attrs:
            found.append(Shown(match.group("id"), "signup-popup", None))
            continue
        placement = _PLACEMENT_RE.search(attrs)
        # The banner's link: the first shop link inside it (before the next exposure).
        stop = matches[position + 1].start() if position + 1 < len(matches) else len(html)
        link = _HREF_RE.search(html, match.end(), min(stop, match.end() + 1500))
        found.append(
            Shown(
                match.group("id"),
                placement.group(1) if placement else "",
                unescape(link.group(1)) if link else None,
            )
        )
    return found


def input_value(html: str, name: str) -> str | None:
    """The ``value`` of the form input called ``name``: None without such an input, "" when
    it has no value."""
    tag = re.search(rf"<input\b[^>]*\bname=\"{re.escape(name)}\"[^>]*>", html)
    if tag is None:
        return None
    value = re.search(r"\bvalue=\"([^\"]*)\"", tag.group(0))
    return unescape(value.group(1)) if value else ""


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def rate_ratio(a: tuple[int, int], b: tuple[int, int]) -> float | None:
    """(buyers, visitors) of a over those of b, or None when b's rate is zero or unknown."""
    if not a[1] or not b[1] or not b[0]:
        return None
    ratio = (a[0] / a[1]) / (b[0] / b[1])
    return ratio if math.isfinite(ratio) else None
