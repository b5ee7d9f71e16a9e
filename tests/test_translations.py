"""The German and French catalogues: what visitors and staff see in their language, and the
catalogues themselves (complete, no fuzzy entries, placeholders kept, .mo files up to date)."""

from __future__ import annotations

import datetime as dt
import gettext
import importlib.util
import re
import shutil
import sys
from decimal import Decimal
from html import unescape
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation

from personalization.models import Conversion, Placement, Visitor
from personalization.recommendations import precompute, serving, store
from personalization.testutils import attach_visitor
from tests.rows import banner_shown

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "personalization" / "locale"
LANGUAGES = ["de", "fr"]
PLURAL_FORMS = {
    "de": "nplurals=2; plural=(n != 1);",
    "fr": "nplurals=2; plural=(n > 1);",
}
SHOWN_AT = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def _load_check_script():
    """scripts/check_translations.py, which holds the .po reader both it and these tests use."""
    spec = importlib.util.spec_from_file_location(
        "check_translations", ROOT / "scripts" / "check_translations.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


check_translations = _load_check_script()


def text_of(html: str) -> str:
    """The page's text with tags dropped and entities read, spaces collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def attributes_and_text(html: str) -> str:
    """Attribute values (where the popup keeps its script's messages) and text, unescaped."""
    return unescape(re.sub(r"\s+", " ", html))


# What visitors see ------------------------------------------------------------------------

POPUP = {
    "de": {
        "present": [
            "Sichern Sie sich 10% Rabatt auf Ihre nächste Bestellung",
            "Code anfordern",
            "E-Mail-Adresse",
            "Wir senden Ihnen Angebote per E-Mail. Sie können sich jederzeit abmelden.",
            "Hier ist Ihr Code",
            "Weiter einkaufen",
            'aria-label="Schließen"',
            'data-pzn-msg-invalid="Bitte geben Sie eine gültige E-Mail-Adresse ein."',
            'data-pzn-msg-copied="Kopiert"',
        ],
        "days": {1: "Er ist 1 Tag gültig.", 21: "Er ist 21 Tage gültig."},
    },
    "fr": {
        "present": [
            "Profitez de 10% de réduction sur votre prochaine commande",
            "Recevoir mon code",
            "Adresse e-mail",
            "Nous vous enverrons nos offres par e-mail. Désabonnement possible à tout moment.",
            "Voici votre code",
            "Continuer mes achats",
            'aria-label="Fermer"',
            'data-pzn-msg-invalid="Veuillez saisir une adresse e-mail valide."',
            'data-pzn-msg-copied="Copié"',
        ],
        "days": {1: "Il est valable 1 jour.", 21: "Il est valable 21 jours."},
    },
}
POPUP_ENGLISH = [
    "Get my code",
    "Email address",
    "Unsubscribe any time",
    "Here is your code",
    "Continue shopping",
    'aria-label="Close"',
    "Please enter a valid email address.",
    "valid for",
    "off your next order",
]


def render_popup(settings, days: int) -> str:
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "SIGNUP_DISCOUNT_PERCENT": 10,
        "SIGNUP_COUPON_DAYS": days,
        "CONTROL_GROUP_PERCENT": 0,
    }
    request = RequestFactory().get("/")
    attach_visitor(request, in_control_group=False)
    return Template("{% load personalization %}{% signup_popup %}").render(
        Context({"request": request})
    )


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_signup_popup_speaks_the_visitors_language(settings, language):
    expected = POPUP[language]
    for days, sentence in expected["days"].items():
        with translation.override(language):
            html = attributes_and_text(render_popup(settings, days))
        assert 'role="dialog"' in html
        for needle in expected["present"]:
            assert needle in html, needle
        assert sentence in html
        for english in POPUP_ENGLISH:
            assert english not in html, english


@pytest.mark.django_db
def test_the_popup_stays_english_without_a_language(settings):
    with translation.override("en"):
        html = attributes_and_text(render_popup(settings, 1))
    assert "Get my code" in html
    assert "It is valid for 1 day." in html
    assert "Code anfordern" not in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [("de-DE,de;q=0.9,en;q=0.5", "Code anfordern"), ("fr-CH, fr;q=0.9", "Recevoir mon code")],
)
def test_a_browser_asking_for_a_language_gets_the_popup_in_it(
    settings, browser, accept_language, expected
):
    """The setup docs/translations.md describes: LANGUAGES and Django's LocaleMiddleware."""
    settings.LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français")]
    session = settings.MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware")
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[: session + 1],
        "django.middleware.locale.LocaleMiddleware",
        *settings.MIDDLEWARE[session + 1 :],
    ]
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": 0}

    # LocaleMiddleware leaves the language it chose active in the thread: restore it after.
    with translation.override(settings.LANGUAGE_CODE):
        response = browser.get("/popup-page/", headers={"accept-language": accept_language})

    assert response.status_code == 200
    html = response.content.decode()
    assert expected in html
    assert "Get my code" not in html
    assert response["Content-Language"] == accept_language[:2]
    assert "Accept-Language" in response["Vary"]


RECOMMENDATIONS_HEADING = {
    "de": "Empfohlen für Sie",
    "fr": "Recommandé pour vous",
    "en": "Recommended for you",
}


@pytest.fixture
def products_with_history(make_product):
    """Four products and enough history for the personal blend to fill a list."""
    from personalization.models import ProductInteraction

    store.forget_local()
    serving.strategies.cache_clear()
    products = [make_product(slug=f"item-{n}", name=f"Item {n}") for n in range(4)]
    rows = [
        ProductInteraction(
            visitor_id=f"buyer-{n}",
            product_id=str(product.pk),
            kind="purchase",
            created_at=SHOWN_AT,
        )
        for n in range(5)
        for product in products
    ]
    ProductInteraction.objects.bulk_create(rows)
    precompute.recompute_all()
    yield products
    store.forget_local()


@pytest.mark.django_db
@pytest.mark.parametrize("language", [*LANGUAGES, "en"])
def test_the_recommendations_heading_is_translated(products_with_history, language):
    request = RequestFactory().get("/")
    attach_visitor(request, in_control_group=False)
    with translation.override(language):
        html = Template('{% load personalization %}{% recommendations "home" limit=3 %}').render(
            Context({"request": request})
        )
    assert html.count('class="pzn-recs__item"') == 3
    title = re.search(r'<h2 class="pzn-recs__title">([^<]*)</h2>', html)
    assert title, html
    assert unescape(title.group(1)) == RECOMMENDATIONS_HEADING[language]


# What staff see ---------------------------------------------------------------------------


@pytest.fixture
def superuser(client):
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


BANNER_ADMIN = {
    "de": ["Wer und wann", "Zielsegmente", "Buttontext", "Der höhere Wert gewinnt."],
    "fr": [
        "Qui et quand",
        "Segments cibles",
        "Texte du bouton",
        "La valeur la plus haute l’emporte.",
    ],
}
BANNER_ADMIN_ENGLISH = ["Who and when", "Target segments", "Button text", "Higher wins."]
PLACEMENT_ADMIN = {
    "de": ["Standardinhalt (Kontrollgruppe und Besucher, zu denen kein Banner passt)"],
    "fr": ["Contenu par défaut (groupe témoin, et visiteurs pour lesquels aucune bannière"],
}


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
def test_staff_edit_banners_and_placements_in_their_language(superuser, language):
    placement = Placement.objects.create(slug="home-hero", name="Home hero")
    with translation.override(language):
        banner_page = superuser.get(reverse("admin:personalization_banner_add"))
        placement_page = superuser.get(
            reverse("admin:personalization_placement_change", args=[placement.pk])
        )
    assert banner_page.status_code == 200
    assert placement_page.status_code == 200
    banner_text = text_of(banner_page.content.decode())
    for needle in BANNER_ADMIN[language]:
        assert needle in banner_text, needle
    for english in BANNER_ADMIN_ENGLISH:
        assert english not in banner_text, english
    placement_text = text_of(placement_page.content.decode())
    for needle in PLACEMENT_ADMIN[language]:
        assert needle in placement_text, needle
    assert "Default content (control group" not in placement_text


@pytest.fixture
def report_reader(client):
    """Staff (not a superuser) holding only the permission that reading the report takes."""
    user = get_user_model().objects.create_user("analyst", "analyst@example.com", "pw")
    user.is_staff = True
    user.save()
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="personalization", codename="view_report")
    )
    client.force_login(user)
    return client


@pytest.fixture
def measured_period():
    """Three personalized visitors (one order) and three in control (none) on 1 Nov 2026."""
    for n in range(6):
        control = n >= 3
        visitor = Visitor.objects.create(
            id=f"v{n}", first_seen=SHOWN_AT, last_seen=SHOWN_AT, in_control_group=control
        )
        banner_shown(visitor, control=control, at=SHOWN_AT)
    Conversion.objects.create(
        visitor_id="v0",
        kind=Conversion.PURCHASE,
        goal="purchase",
        order_id="A-1",
        revenue=Decimal("30.00"),
        currency="EUR",
        is_control=False,
        created_at=SHOWN_AT + dt.timedelta(hours=1),
    )


REPORT = {
    "de": [
        "Berichtszeitraum",
        "CSV herunterladen",
        "Personalisiert vs. Kontrollgruppe",
        "Relativer Uplift",
        "Conversion-Rate: 1 von 3 Besuchern",
        "So lesen Sie diesen Bericht",
        "Besucher der Kontrollgruppe",
        "Nach Inhalt (personalisierte Besucher)",
    ],
    "fr": [
        "Période du rapport",
        "Télécharger le CSV",
        "Personnalisé vs témoin",
        "Gain relatif",
        "taux de conversion\u00a0: 1 sur 3 visiteurs",
        "Comment lire ce rapport",
        "Visiteurs témoins",
        "Par contenu (visiteurs personnalisés)",
    ],
}
REPORT_ENGLISH = [
    "Report period",
    "Download CSV",
    "Personalized vs control",
    "Relative lift",
    "conversion rate:",
    "How to read this report",
    "Control visitors",
    "By content",
]


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_report_page_speaks_the_staff_members_language(
    report_reader, measured_period, language
):
    url = reverse("admin:personalization_report") + "?start=2026-11-01&end=2026-11-02"
    with translation.override(language):
        response = report_reader.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    text = text_of(html)
    for needle in REPORT[language]:
        assert needle in text or needle in unescape(html), needle
    for english in REPORT_ENGLISH:
        assert english not in text, english


# The catalogues ---------------------------------------------------------------------------


def catalogue(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / "django.po"


def entries(language: str):
    return check_translations.messages(check_translations.parse_po(catalogue(language)))


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_language_ships_a_catalogue_and_its_compiled_file(language):
    assert catalogue(language).is_file()
    assert catalogue(language).with_suffix(".mo").is_file()
    assert sorted(path.name for path in LOCALE_DIR.iterdir() if path.is_dir()) == LANGUAGES


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_header_names_the_language_and_its_plural_rule(language):
    [header] = [
        entry for entry in check_translations.parse_po(catalogue(language)) if entry.is_header
    ]
    fields = dict(line.split(": ", 1) for line in header.msgstr[0].splitlines() if ": " in line)
    assert fields["Language"] == language
    assert fields["Plural-Forms"] == PLURAL_FORMS[language]
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"
    assert "fuzzy" not in header.flags


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_string_is_translated_and_none_is_fuzzy(language):
    messages = entries(language)
    assert len(messages) > 300
    problems = [
        (entry.msgid, reason)
        for entry in messages
        if (reason := check_translations.untranslated(entry)) is not None
    ]
    assert problems == []
    assert all(len(entry.msgstr) == 2 for entry in messages if entry.msgid_plural is not None)


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_placeholders_and_html(language):
    problems = {
        entry.msgid: check_translations.placeholder_problems(entry) for entry in entries(language)
    }
    assert {msgid: texts for msgid, texts in problems.items() if texts} == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_are_not_left_in_english(language):
    # A few words are the same in both languages (HTML, Segment, Position…); not many.
    messages = entries(language)
    same = [entry.msgid for entry in messages if entry.msgstr[0] == entry.msgid]
    assert len(same) < len(messages) * 0.05, same


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_holds_exactly_the_po_file(language):
    po_entries = entries(language)
    with catalogue(language).with_suffix(".mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for entry in po_entries:
        if entry.msgid_plural is None:
            assert compiled.gettext(entry.msgid) == entry.msgstr[0], entry.msgid
        else:
            assert compiled.ngettext(entry.msgid, entry.msgid_plural, 1) == entry.msgstr[0]
            assert compiled.ngettext(entry.msgid, entry.msgid_plural, 5) == entry.msgstr[1]
    # Nothing more either: the .mo holds the header plus one key per message.
    assert len(compiled._catalog) == 1 + sum(  # type: ignore[attr-defined]
        2 if entry.msgid_plural is not None else 1 for entry in po_entries
    )
    assert (
        check_translations.stale_in_mo(catalogue(language), catalogue(language).with_suffix(".mo"))
        == []
    )


def test_the_po_reader_reads_what_gettext_writes(tmp_path):
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: de\\n"\n\n'
        "#: a.py b.py\n#, python-format\n"
        'msgid "Hello %(name)s"\nmsgstr ""\n"Hallo "\n"%(name)s"\n\n'
        '#, fuzzy\n#| msgid "Old"\nmsgctxt "menu"\nmsgid "Open"\nmsgstr "Öffnen"\n\n'
        'msgid "%d day"\nmsgid_plural "%d days"\nmsgstr[0] "%d Tag"\nmsgstr[1] ""\n\n'
        'msgid "Say \\"hi\\"\\n"\nmsgstr "Sag \\"hallo\\"\\n"\n\n'
        '#~ msgid "Gone"\n#~ msgstr "Weg"\n',
        encoding="utf-8",
    )
    parsed = check_translations.parse_po(po)
    assert [entry.msgid for entry in parsed] == ["", "Hello %(name)s", "Open", "%d day",
                                                 'Say "hi"\n', "Gone"]  # fmt: skip
    header, hello, menu, days, quoted, gone = parsed
    assert header.is_header and header.msgstr[0] == "Language: de\n"
    assert hello.msgstr == {0: "Hallo %(name)s"}
    assert hello.locations == ["a.py", "b.py"] and hello.flags == {"python-format"}
    assert (menu.msgctxt, menu.flags) == ("menu", {"fuzzy"})
    assert check_translations.untranslated(menu) == "fuzzy"
    assert days.msgid_plural == "%d days"
    assert check_translations.untranslated(days) == "untranslated"
    assert quoted.msgstr == {0: 'Sag "hallo"\n'}
    assert gone.obsolete and not hello.obsolete
    assert check_translations.messages(parsed) == [hello, menu, days, quoted]


@pytest.mark.parametrize(
    ("msgid", "msgstr", "flags", "wrong"),
    [
        ("Hello %(name)s", "Hallo %(name)s", {"python-format"}, False),
        ("Hello %(name)s", "Hallo %(nom)s", {"python-format"}, True),
        ("%(n)s%% off", "%(n)s\u00a0%% Rabatt", {"python-format"}, False),
        ("Sent to {email}", "An {email} gesendet", set(), False),
        ("Sent to {email}", "An {mail} gesendet", set(), True),
        ("For <span data-x>%(d)s</span> off", "Für <span data-x>%(d)s</span>", set(), False),
        ("For <span data-x>%(d)s</span> off", "Für <span>%(d)s</span>", set(), True),
        ("Above 0% in 95% of cases", "Über 0 % in 95-%-Fällen", set(), False),
    ],
)
def test_placeholder_check(msgid, msgstr, flags, wrong):
    entry = check_translations.Entry(msgid=msgid, msgstr={0: msgstr}, flags=flags)
    assert bool(check_translations.placeholder_problems(entry)) is wrong


# The check that CI runs -------------------------------------------------------------------

needs_gettext = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in check_translations.GETTEXT_TOOLS),
    reason="GNU gettext (xgettext, msgmerge, msgfmt) is not installed",
)


@needs_gettext
def test_the_check_lists_new_untranslated_fuzzy_and_uncompiled_strings(tmp_path):
    package = tmp_path / "personalization"
    shutil.copytree(ROOT / "personalization", package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "zz_new_text.py").write_text(
        "from django.utils.translation import gettext as _\n\n"
        'NEW = _("A sentence nobody has translated yet")\n',
        encoding="utf-8",
    )
    german = package / "locale" / "de" / "LC_MESSAGES" / "django.po"
    source = german.read_text(encoding="utf-8")
    assert 'msgid "Copied"\nmsgstr "Kopiert"\n' in source
    german.write_text(
        source.replace('msgid "Copied"\nmsgstr "Kopiert"\n', 'msgid "Copied"\nmsgstr ""\n'),
        encoding="utf-8",
    )

    problems = "\n".join(check_translations.check(package, []))

    assert "de/django:" in problems and "fr/django:" in problems
    assert problems.count("A sentence nobody has translated yet") == 2
    assert "missing from the catalogue, untranslated: 'A sentence nobody" in problems
    assert "untranslated: 'Copied' (templates/personalization/popup.html)" in problems
    # The shipped .mo still says "Kopiert": it no longer matches the emptied .po, but an empty
    # translation is reported as untranslated, not as stale.
    assert "run compilemessages" not in problems
    # The checkout itself is left alone.
    assert "zz_new_text" not in "".join(path.name for path in (ROOT / "personalization").iterdir())


@needs_gettext
def test_the_check_flags_a_compiled_catalogue_older_than_its_po_file(tmp_path):
    package = tmp_path / "personalization"
    shutil.copytree(ROOT / "personalization", package, ignore=shutil.ignore_patterns("__pycache__"))
    french = package / "locale" / "fr" / "LC_MESSAGES" / "django.po"
    source = french.read_text(encoding="utf-8")
    assert 'msgstr "Copié"' in source
    french.write_text(source.replace('msgstr "Copié"', 'msgstr "Copié !"'), encoding="utf-8")

    problems = check_translations.check(package, ["fr"])

    stale = [line for line in problems if "run compilemessages" in line]
    assert stale == [
        "  not in the compiled .mo (run compilemessages): 'Copied' "
        "(templates/personalization/popup.html)"
    ]
    assert not any(line.startswith("de/") for line in problems)
