"""The markup of ``{% recommendations %}``: the template a shop chose, or the app's own.

The app's own template (``personalization/recommendations.html``, when nothing overrides it)
is written here in Python, to the byte what the template engine makes of it (a test renders
both), in a tenth of the time: a product page renders it on every view. A shop's template —
for every placement, for one, or the adapter's — is rendered by its engine as before.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.template import Context
from django.template.base import render_value_in_context
from django.template.loader import select_template
from django.utils import translation
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

DEFAULT_NAME = "personalization/recommendations.html"
DEFAULT_FILE = os.path.realpath(
    os.path.join(os.path.dirname(os.path.dirname(__file__)), "templates", DEFAULT_NAME)
)
# What {{ }} renders values in: the defaults of a template's context (autoescape on, the
# active language's number format, the active time zone).
_VALUES = Context(autoescape=True)


def render(
    names: Sequence[str], result: Any, items: list[dict[str, Any]], request: HttpRequest | None
) -> SafeString:
    """``result`` and its ``items`` through the first template of ``names`` found."""
    chosen = select_template(list(names))
    if is_default(chosen):
        return default_markup(result, items)
    html: str = chosen.render({"recommendations": result, "items": items}, request)
    return mark_safe(html)


def is_default(chosen: Any) -> bool:
    """Whether ``chosen`` (a backend's template) is the app's own file, read by a Django
    engine that escapes HTML as the file expects."""
    inner = getattr(chosen, "template", None)
    origin = getattr(inner, "origin", None)
    engine = getattr(inner, "engine", None)
    return (
        _is_default_file(getattr(origin, "name", None))
        and engine is not None
        and engine.autoescape is True
        and not engine.string_if_invalid
    )


_files: dict[str, bool] = {}


def _is_default_file(name: Any) -> bool:
    """Whether the template file ``name`` is the app's own (links resolved, once a name)."""
    if not isinstance(name, str):
        return False
    known = _files.get(name)
    if known is None:
        known = _files[name] = os.path.realpath(name) == DEFAULT_FILE
    return known


class _Values:
    """``{{ value }}`` as a template renders it, for one markup: strings escaped; integers
    and other numbers in the active language's format, worked out once a language and value
    (formatting a number reads the active language and its formats every time)."""

    def __init__(self) -> None:
        self.grouping = bool(settings.USE_THOUSAND_SEPARATOR)
        self.language = translation.get_language() or ""

    def __call__(self, value: Any) -> str:
        kind = type(value)
        if kind is str or kind is SafeString:
            return conditional_escape(value)
        if kind is int and not self.grouping:
            return str(value)
        if kind is Decimal or kind is int:
            key = (self.language, self.grouping, kind, str(value))
            known = _numbers.get(key)
            if known is None:
                if len(_numbers) >= _NUMBERS_MAX:
                    _numbers.clear()
                known = _numbers[key] = render_value_in_context(value, _VALUES)
            return known
        return render_value_in_context(value, _VALUES)


# Numbers as the markup shows them, per language (prices repeat from page to page).
_numbers: dict[tuple[str, bool, type, str], str] = {}
_NUMBERS_MAX = 4096


@receiver(setting_changed)
def _forget_numbers(**kwargs: Any) -> None:
    """Formats are settings too (``FORMAT_MODULE_PATH``, ``USE_THOUSAND_SEPARATOR``, …)."""
    _numbers.clear()


def default_markup(result: Any, items: list[dict[str, Any]]) -> SafeString:
    """What the template engine renders of ``personalization/recommendations.html``."""
    _value = _Values()
    placement = _value(result.placement)
    parts = [
        '\n<section class="pzn-recs pzn-recs--',
        placement,
        '"\n         data-personalization-placement="',
        placement,
        '"\n         ',
    ]
    if result.exposure_id:
        parts += ['data-personalization-exposure="', _value(result.exposure_id), '"']
    parts.append(">\n  ")
    if result.title:
        parts += ['<h2 class="pzn-recs__title">', _value(result.title), "</h2>"]
    parts.append('\n  <ul class="pzn-recs__list">\n    ')
    for item in items:
        parts += [
            '\n    <li class="pzn-recs__item" data-personalization-product="',
            _value(item.get("pk", "")),
            '">\n      <a href="',
            _value(item.get("url") or "#"),
            '">\n        ',
        ]
        if item.get("image_url"):
            parts += [
                '<img src="',
                _value(item["image_url"]),
                '" alt="" loading="lazy" width="160" height="120">',
            ]
        parts += [
            '\n        <span class="pzn-recs__name">',
            _value(item.get("name", "")),
            "</span>\n        ",
        ]
        if item.get("price") is not None:
            parts += ['<span class="pzn-recs__price">', _value(item["price"]), "</span>"]
        parts.append("\n      </a>\n    </li>\n    ")
    parts.append("\n  </ul>\n</section>\n")
    return mark_safe("".join(parts))
