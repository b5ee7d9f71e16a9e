"""What a product adapter may add for its shop's templates: a currency, extra card fields,
its own recommendations template rendered from cached cards; adapters written without them
keep working."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from personalization.models import ProductInteraction
from personalization.products import DefaultProductAdapter, cards
from personalization.recommendations import precompute, store
from personalization.testutils import attach_visitor

pytestmark = pytest.mark.django_db

CARDS_TEMPLATE = (
    "{% for item in items %}[{{ item.pk }} {{ item.name }} {{ item.price }} {{ item.currency }}"
    " {{ item.badge }} {{ item.product|default:'no-instance' }}]{% endfor %}"
)


class CardAdapter(DefaultProductAdapter):
    """A shop's adapter: prices in CHF, a badge, markup of its own from cached cards."""

    recommendations_template = "shop/recommendations.html"
    recommendations_from_cards = True

    def currency(self, product):
        return "CHF"

    def card_extras(self, product):
        return {"badge": "new" if product.stock > 8 else "last-ones", "id": "overridden?"}


class OldStyleAdapter:
    """An adapter written before currency() and card_extras() existed (no base class)."""

    def __init__(self, model):
        self.inner = DefaultProductAdapter(model)

    def __getattr__(self, name):
        if name in {"currency", "card_extras", "recommendations_template"}:
            raise AttributeError(name)
        return getattr(self.inner, name)


@pytest.fixture
def shop(make_product, settings):
    products = [make_product(name=f"Tent {n}", stock=10 - 4 * n) for n in range(2)]
    now = timezone.now()
    ProductInteraction.objects.bulk_create(
        ProductInteraction(
            visitor_id=f"b{product.pk}-{n}",
            product_id=str(product.pk),
            kind="purchase",
            created_at=now - dt.timedelta(hours=1),
        )
        for product in products
        for n in range(3)
    )
    precompute.recompute_all()
    store.forget_local()
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "loaders": [
                    ("django.template.loaders.locmem.Loader", {
                        "shop/recommendations.html": CARDS_TEMPLATE,
                    }),
                    "django.template.loaders.app_directories.Loader",
                ],
            },
        }
    ]  # fmt: skip
    return products


def use_adapter(settings, path: str) -> None:
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PRODUCT_ADAPTER": path}


def render_tag(source: str) -> str:
    request = RequestFactory().get("/")
    attach_visitor(request, in_control_group=True)
    return Template("{% load personalization %}" + source).render(Context({"request": request}))


def test_cards_carry_the_currency_and_the_extras(shop, settings):
    use_adapter(settings, "tests.test_adapter_hooks.CardAdapter")
    card = cards([str(shop[1].pk)])[str(shop[1].pk)]
    assert (card["currency"], card["badge"]) == ("CHF", "last-ones")
    assert card["id"] == str(shop[1].pk)  # the standard fields win over extras


def test_the_tag_renders_the_adapters_template_from_cached_cards(
    shop, settings, django_assert_max_num_queries
):
    use_adapter(settings, "tests.test_adapter_hooks.CardAdapter")
    source = '{% recommendations "home" limit=2 %}'
    first = render_tag(source)
    assert first == (
        f"[{shop[0].pk} Tent 0 19.90 CHF new no-instance]"
        f"[{shop[1].pk} Tent 1 19.90 CHF last-ones no-instance]"
    )
    with django_assert_max_num_queries(0):
        assert render_tag(source) == first
    # Into a variable, the tag still gives the shop's products.
    source = '{% recommendations "home" limit=1 as r %}{% for p in r %}{{ p.slug }}{% endfor %}'
    assert render_tag(source) == shop[0].slug


def test_the_api_adds_the_currency_only_when_known(shop, settings, client):
    params = {"placement": "home", "limit": 2}
    client.get("/")
    items = client.get("/personalization/api/recommendations/", params).json()["items"]
    assert "currency" not in items[0]
    use_adapter(settings, "tests.test_adapter_hooks.CardAdapter")
    items = client.get("/personalization/api/recommendations/", params).json()["items"]
    assert [item["currency"] for item in items] == ["CHF", "CHF"]
    assert "badge" not in items[0]


def test_an_adapter_without_the_new_methods_keeps_working(shop, settings):
    use_adapter(settings, "tests.test_adapter_hooks.OldStyleAdapter")
    card = cards([str(shop[0].pk)])[str(shop[0].pk)]
    assert (card["name"], card["currency"]) == ("Tent 0", None)
    html = render_tag('{% recommendations "home" limit=2 %}')
    assert html.count('class="pzn-recs__item"') == 2


class LanguageAdapter(DefaultProductAdapter):
    """A multilingual shop's adapter: URLs under ``i18n_patterns``, translated names."""

    NAMES = {"de": "Zelt", "fr": "Tente"}

    def name(self, product):
        from django.utils.translation import get_language

        return f"{self.NAMES.get(get_language(), 'Tent')} {product.stock}"

    def url(self, product):
        from django.utils.translation import get_language

        return f"/{get_language()}/products/{product.slug}/"


def test_cards_are_kept_per_language_and_a_save_renews_every_language(shop, settings):
    """A card's URL and name follow the language it is read in; saving the product renews
    its cards in every language, here and in the shared cache."""
    from django.utils import translation

    settings.LANGUAGES = [("en", "English"), ("de", "German"), ("fr", "French")]
    use_adapter(settings, "tests.test_adapter_hooks.LanguageAdapter")
    key = str(shop[0].pk)
    seen = {}
    for language in ("de", "fr", "en"):
        with translation.override(language):
            seen[language] = cards([key])[key]
    assert seen["de"]["url"] == f"/de/products/{shop[0].slug}/"
    assert seen["fr"]["url"] == f"/fr/products/{shop[0].slug}/"
    assert (seen["de"]["name"], seen["fr"]["name"], seen["en"]["name"]) == (
        "Zelt 10", "Tente 10", "Tent 10",
    )  # fmt: skip
    shop[0].stock = 3
    shop[0].save()
    for language, word in (("de", "Zelt"), ("fr", "Tente")):
        with translation.override(language):
            assert cards([key])[key]["name"] == f"{word} 3"


def test_rendered_links_follow_the_language_and_a_save(shop, settings):
    """The tag's links are memoised per language like the cards: each language gets its
    own, and a saved product links to its new address at once."""
    from django.utils import translation

    settings.LANGUAGES = [("en", "English"), ("de", "German")]
    use_adapter(settings, "tests.test_adapter_hooks.LanguageAdapter")
    source = '{% recommendations "home" limit=2 %}'
    with translation.override("de"):
        assert f'href="/de/products/{shop[0].slug}/"' in render_tag(source)
    with translation.override("en"):
        assert f'href="/en/products/{shop[0].slug}/"' in render_tag(source)
    shop[0].slug = "tent-renamed"
    shop[0].save()
    with translation.override("de"):
        html = render_tag(source)
    assert 'href="/de/products/tent-renamed/"' in html
    assert f'/products/{shop[1].slug}/"' in html
