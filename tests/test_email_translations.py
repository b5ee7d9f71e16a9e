"""Customer emails in the shop's language: the welcome and browse-abandonment emails (subject,
text and HTML), the double opt-in confirmation and the unsubscribe page, in German and French
when ``LANGUAGE_CODE`` says so, whatever language the worker that sends them has active, and
in English for an English shop. The real job sends them; Django's locmem backend receives."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone, translation

from personalization.models import Coupon, EmailRecipient
from tests.test_emails import SITE, browse, run_emails, set_email_settings, shopper, sign_up
from tests.test_translations import catalogue, check_translations

pytestmark = pytest.mark.django_db

MONTHS = {
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
           "Oktober", "November", "Dezember"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"],
}  # fmt: skip
NBSP = "\u00a0"

# What each email says in each language (the price of 19.90 in the language's own notation).
EXPECTED = {
    "de": {
        "welcome_subject": "Willkommen! Hier ist Ihr Rabatt von 10 %",
        "welcome": [
            "Willkommen!",
            "Danke für Ihre Anmeldung. Ihr Code für 10 % Rabatt auf Ihre nächste Bestellung:",
            f"Empfehlen Sie uns weiter: Wer über Ihren Link kommt, erhält 10{NBSP}% Rabatt",
            f"und Sie erhalten 15{NBSP}% Rabatt auf Ihre nächste, sobald diese Person bestellt.",
            "Zum Shop",
        ],
        "valid_until": "Gültig bis {day}. {month} {year}.",
        "browse_subject": "Denken Sie noch über Trail tent nach?",
        "browse": [
            "Noch am Überlegen?",
            "Sie haben sich diesen Artikel neulich angesehen. Er ist noch da:",
            "19,90",
            "Zum Shop",
        ],
        "footer": [
            "Sie erhalten diese E-Mail, weil Sie dem Empfang unserer Nachrichten zugestimmt haben.",
            "Keine E-Mails dieser Art mehr",
            "Von allen E-Mails abmelden",
        ],
        "confirm_subject": "Bitte bestätigen Sie Ihre E-Mail-Adresse",
        "confirm": [
            "Nur noch ein Schritt",
            "Bitte bestätigen Sie, dass ada@example.com unsere Angebote erhalten darf",
            "Falls Sie sich nicht angemeldet haben, ignorieren Sie diese E-Mail einfach",
        ],
        "unsubscribe_page": ["Abmelden", "Keine E-Mails dieser Art mehr an b@example.com senden?"],
        "unsubscribed_page": ["Sie sind abgemeldet", "b@example.com erhält keine E-Mails"],
        "bad_link": "Dieser Abmeldelink ist ungültig.",
    },
    "fr": {
        "welcome_subject": f"Bienvenue{NBSP}! Voici vos 10 % de réduction",
        "welcome": [
            f"Bienvenue{NBSP}!",
            "Merci pour votre inscription. Votre code pour 10 % de réduction sur votre prochaine"
            f" commande{NBSP}:",
            f"Parrainez un proche{NBSP}: avec votre lien, il bénéficie de 10{NBSP}% de réduction",
            f"et vous de 15{NBSP}% sur votre prochaine commande dès qu’il a commandé.",
            "Visiter la boutique",
        ],
        "valid_until": "Valable jusqu’au {day} {month} {year}.",
        "browse_subject": f"Vous pensez encore à Trail tent{NBSP}?",
        "browse": [
            f"Vous hésitez encore{NBSP}?",
            f"Vous avez regardé cet article l’autre jour. Il est toujours là{NBSP}:",
            "19,90",
            "Visiter la boutique",
        ],
        "footer": [
            "Vous recevez cet e-mail car vous avez accepté de recevoir nos messages.",
            "Ne plus recevoir ce type d’e-mails",
            "Se désabonner de tous les e-mails",
        ],
        "confirm_subject": "Veuillez confirmer votre adresse e-mail",
        "confirm": [
            "Plus qu’une étape",
            "Veuillez confirmer que l’adresse ada@example.com peut recevoir nos offres",
            "Si vous n’êtes pas à l’origine de cette inscription, ignorez cet e-mail",
        ],
        "unsubscribe_page": [
            "Se désabonner",
            f"Ne plus envoyer d’e-mails de ce type à b@example.com{NBSP}?",
        ],
        "unsubscribed_page": [
            "Votre désabonnement est confirmé",
            "b@example.com ne recevra plus d’e-mails de ce type.",
        ],
        "bad_link": "Ce lien de désabonnement n’est pas valide.",
    },
}


def english_sentences() -> list[str]:
    """The English wording of the email templates, as pieces between placeholders (from the
    catalogue's entries that the templates under personalization/email/ mark)."""
    pieces = set()
    for entry in check_translations.messages(check_translations.parse_po(catalogue("de"))):
        if not any("templates/personalization/email/" in where for where in entry.locations):
            continue
        for original in (entry.msgid, entry.msgid_plural or ""):
            for piece in re.split(r"%\([^)]*\)s|%%", original):
                piece = piece.strip(" .:?!,")
                if len(piece) >= 5:
                    pieces.add(piece)
    assert len(pieces) > 40  # the templates' wording is in the catalogue
    return sorted(pieces)


def readable(text: str) -> str:
    """What a reader sees: tags dropped, entities read, addresses of links left out."""
    text = unescape(re.sub(r"<[^>]+>", " ", text))
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"https?://\S+", " ", text))  # no-break spaces kept


def leftover_english(*texts: str) -> list[str]:
    seen = " ".join(readable(text) for text in texts)
    return [p for p in english_sentences() if re.search(rf"\b{re.escape(p)}\b", seen)]


@pytest.fixture
def email_settings(settings):
    return set_email_settings(
        settings,
        EMAIL_FLOWS={"welcome": 0, "browse_abandonment": 60},
        EMAIL_MAX_PER_WEEK=100,
        REFERRAL_WELCOME_PERCENT=10,
        REFERRAL_REWARD_PERCENT=15,
    )


def welcome_and_browse_emails(clock, make_product, worker_language: str):
    """A visitor signs up, looks at a tent and leaves; the job runs in a worker that has
    ``worker_language`` active. The welcome and the browse-abandonment email, in that order."""
    make_product(slug="tent", name="Trail tent", price="19.90")
    browser = shopper(clock)
    sign_up(browser)
    browse(browser, clock, "tent")
    clock.shift(3 * 3600)
    with translation.override(worker_language):
        assert run_emails()["sent"] == 2
        assert translation.get_language() == worker_language  # left as the worker had it
    by_flow = {}
    for message in mail.outbox:
        flow = "welcome" if "?ref=" in message.body else "browse_abandonment"
        by_flow[flow] = message
    assert len(by_flow) == 2
    return by_flow["welcome"], by_flow["browse_abandonment"]


def html_of(message) -> str:
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    return html


@pytest.mark.parametrize("language", ["de", "fr"])
def test_a_shop_in_german_or_french_sends_its_emails_in_that_language(
    email_settings, clock, make_product, language
):
    email_settings.LANGUAGE_CODE = language
    expected = EXPECTED[language]
    # The worker has English active (a Celery worker, a cron job): the shop's language wins.
    welcome, browse_email = welcome_and_browse_emails(clock, make_product, "en")

    expires = timezone.localtime(Coupon.objects.get().expires_at)
    valid_until = expected["valid_until"].format(
        day=expires.day, month=MONTHS[language][expires.month - 1], year=expires.year
    )
    # A subject's runs of whitespace become one space; French no-break spaces stay.
    assert welcome.subject == expected["welcome_subject"]
    assert browse_email.subject == expected["browse_subject"]
    for message, says in (
        (welcome, [*expected["welcome"], valid_until]),
        (browse_email, expected["browse"]),
    ):
        html = html_of(message)
        assert f'<html lang="{language}">' in html
        for part in (message.body, readable(html)):
            for words in [*says, *expected["footer"]]:
                assert words in part, (words, part)
        assert leftover_english(message.subject, message.body, html) == []
        # The links and the one-click unsubscribe are those of any email.
        assert re.search(rf"{SITE}/personalization/email/unsubscribe/\S+/", message.body)
        assert f'href="{SITE}/personalization/email/unsubscribe/' in html
        assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.extra_headers["List-Unsubscribe"].startswith(f"<{SITE}/personalization/")
    assert f"{SITE}/personalization/email/c/" in browse_email.body  # tracked links


def test_an_english_shop_sends_english_whatever_the_worker_has_active(
    email_settings, clock, make_product
):
    email_settings.LANGUAGE_CODE = "en-us"
    welcome, browse_email = welcome_and_browse_emails(clock, make_product, "de")

    code = Coupon.objects.get().code
    assert welcome.subject == "Welcome! Here is your 10% off"
    assert browse_email.subject == "Still thinking about Trail tent?"
    assert f"Thanks for signing up. Your code for 10% off your next order: {code}" in welcome.body
    assert "Tell a friend: with your link they get 10% off their first order" in welcome.body
    assert "You were looking at this the other day. It is still here:" in browse_email.body
    assert "- Trail tent (19.90)" in browse_email.body
    assert re.search(rf"^Visit the shop: {SITE}/personalization/email/c/", browse_email.body, re.M)
    for message in (welcome, browse_email):
        html = html_of(message)
        assert '<html lang="en-us">' in html
        assert "You receive this email because you agreed to hear from us." in message.body
        assert "You receive this email because you agreed to hear from us." in html
        assert ">Unsubscribe from all</a>" in html
        assert not any(
            words in message.body or words in readable(html)
            for words in [*EXPECTED["de"]["footer"], *EXPECTED["fr"]["footer"]]
        )


@pytest.mark.parametrize("language", ["de", "fr"])
def test_the_double_opt_in_confirmation_speaks_the_shop_s_language(email_settings, clock, language):
    email_settings.LANGUAGE_CODE = language
    email_settings.PERSONALIZATION = {
        **email_settings.PERSONALIZATION,
        "EMAIL_DOUBLE_OPT_IN": True,
    }
    sign_up(shopper(clock))
    with translation.override("en"):
        assert run_emails()["confirmations"] == 1
    (confirmation,) = mail.outbox
    expected = EXPECTED[language]
    assert confirmation.subject == expected["confirm_subject"]
    html = html_of(confirmation)
    for part in (confirmation.body, readable(html)):
        for words in expected["confirm"]:
            assert words in part, (words, part)
    assert re.search(rf"^{SITE}/personalization/email/confirm/\S+/$", confirmation.body, re.M)
    assert leftover_english(confirmation.subject, confirmation.body, html) == []


@pytest.mark.parametrize("language", ["de", "fr"])
def test_the_unsubscribe_page_and_its_errors_speak_the_shop_s_language(email_settings, language):
    from personalization.emails import links

    email_settings.LANGUAGE_CODE = language
    recipient = EmailRecipient.objects.create(
        email="b@example.com",
        consent_at=timezone.now(),
        consent_text="yes",
        consent_source=EmailRecipient.SOURCE_POPUP,
    )
    url = links.unsubscribe_url(recipient.pk, "browse_abandonment").removeprefix(SITE)
    expected = EXPECTED[language]
    asking = Client().get(url)
    assert asking.status_code == 200 and f'<html lang="{language}">' in asking.text
    assert all(words in readable(asking.text) for words in expected["unsubscribe_page"])
    done = Client().post(url)
    assert done.status_code == 200
    assert all(words in readable(done.text) for words in expected["unsubscribed_page"])
    assert leftover_english(asking.text, done.text) == []
    bad = Client().get("/personalization/email/unsubscribe/forged/")
    assert bad.status_code == 400 and bad.text == expected["bad_link"]
