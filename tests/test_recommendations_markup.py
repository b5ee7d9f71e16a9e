"""The markup of ``{% recommendations %}``: the app's own template written in Python gives
the template engine's bytes in every case, and a shop's own template is still the one used."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.template.loader import get_template
from django.test import RequestFactory
from django.utils import translation
from django.utils.translation import gettext_lazy

from personalization.recommendations import markup


@dataclass
class Shown:
    placement: str = "product-related"
    strategy: str = "auto"
    title: object = "Recommended for you"
    exposure_id: str = "e1"
    is_control: bool = False


def item(pk, **fields):
    return {"product": None, "pk": pk, "name": f"Tent {pk}", "url": f"/p/{pk}/",
            "price": Decimal("19.90"), "image_url": None, **fields}  # fmt: skip


TITLES = ["Recommended for you", "", 'Tents & "tarps" <b>', gettext_lazy("Trending now")]
EXPOSURES = ["e1", ""]
ITEM_LISTS = [
    [],
    [item(1)],
    [
        item(1234, image_url="/media/a.png?x=1&y=<2>"),
        item("sku-9", name="Tom's <tent> & co", url=None, price=None),
        item(7, price=Decimal("1234567.5"), url="", image_url=""),
        item(8, price=12),
        {"pk": 9, "name": "no url, price or image keys"},
    ],
]
PLACEMENTS = ["product-related", 'odd"<placement>']


def engine_markup(result, items):
    return get_template(markup.DEFAULT_NAME).render({"recommendations": result, "items": items})


@pytest.mark.parametrize("language", ["en", "de", "fr"])
@pytest.mark.parametrize("separator", [False, True])
def test_the_default_markup_is_the_template_engines_to_the_byte(settings, language, separator):
    settings.USE_THOUSAND_SEPARATOR = separator
    with translation.override(language):
        for title, exposure, items, placement in itertools.product(
            TITLES, EXPOSURES, ITEM_LISTS, PLACEMENTS
        ):
            result = Shown(placement=placement, title=title, exposure_id=exposure)
            assert markup.default_markup(result, items) == engine_markup(result, items)


def test_values_are_escaped_and_localised():
    with translation.override("de"):
        html = markup.default_markup(Shown(title="<i>x</i>"), [item(1, name="A & B")])
    assert "&lt;i&gt;x&lt;/i&gt;" in html and "A &amp; B" in html
    assert "19,90" in html


def test_the_default_template_is_recognised_and_rendered_without_the_engine(monkeypatch):
    names = ["personalization/recommendations_product-related.html", markup.DEFAULT_NAME]
    rendered = []
    monkeypatch.setattr(markup, "default_markup", lambda *args: rendered.append(args) or "fast")
    assert markup.render(names, Shown(), [item(1)], RequestFactory().get("/")) == "fast"
    assert len(rendered) == 1


SHOP_TEMPLATE = "{% for item in items %}<{{ item.name }}>{% endfor %}|{{ request.path }}"


def shop_templates(settings, templates, **options):
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "loaders": [
                    ("django.template.loaders.locmem.Loader", templates),
                    "django.template.loaders.app_directories.Loader",
                ],
                "context_processors": ["django.template.context_processors.request"],
                **options,
            },
        }
    ]  # Django's setting_changed receiver makes the engines anew


@pytest.mark.parametrize(
    "overridden",
    [markup.DEFAULT_NAME, "personalization/recommendations_product-related.html"],
)
def test_a_shops_template_is_rendered_by_its_engine(settings, overridden):
    shop_templates(settings, {overridden: SHOP_TEMPLATE})
    names = ["personalization/recommendations_product-related.html", markup.DEFAULT_NAME]
    html = markup.render(names, Shown(), [item(1), item(2)], RequestFactory().get("/shop/"))
    assert html == "<Tent 1><Tent 2>|/shop/"  # with the request's context processors


def test_an_engine_that_does_not_escape_renders_the_file_itself(settings):
    shop_templates(settings, {}, autoescape=False)
    names = [markup.DEFAULT_NAME]
    html = markup.render(names, Shown(), [item(1, name="A & B")], None)
    assert "A & B" in html and html == engine_markup(Shown(), [item(1, name="A & B")])
