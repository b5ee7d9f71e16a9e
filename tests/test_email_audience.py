"""Who may receive email besides the popup's signups: a logged-in customer's own opt-in (and
opt-out) and an import of a list kept with consent; invalid addresses never get in."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.utils import timezone

from personalization.emails import audience
from personalization.models import EmailRecipient

pytestmark = pytest.mark.django_db


def customer_request(user, visitor_id=None):
    request = RequestFactory().get("/account/")
    request.user = user

    class Visitor:
        id = visitor_id
        is_tracked = visitor_id is not None

    request.visitor = Visitor()
    return request


def test_a_customer_opts_in_from_their_account_and_out_again(django_user_model):
    user = django_user_model.objects.create_user("ada", email="Ada@Example.com", password="x")
    recipient = audience.subscribe_customer(customer_request(user, "v" * 32), "Email me news")
    assert recipient.email == user.email == "Ada@example.com" and recipient.user == user
    assert recipient.consent_source == "account" and recipient.visitor_id == "v" * 32
    assert audience.unsubscribe_customer(customer_request(user))
    recipient.refresh_from_db()
    assert recipient.unsubscribed_at is not None
    # Ticking the box again is a new consent of their own: subscribed again.
    again = audience.subscribe_customer(customer_request(user), "Email me news, again")
    assert again.pk == recipient.pk and again.unsubscribed_at is None
    assert again.consent_text == "Email me news, again"


def test_no_opt_in_without_a_customer_or_a_valid_address(django_user_model):
    from django.contrib.auth.models import AnonymousUser

    assert audience.subscribe_customer(customer_request(AnonymousUser()), "Email me") is None
    user = django_user_model.objects.create_user("bob", email="", password="x")
    assert audience.subscribe_customer(customer_request(user), "Email me") is None
    assert not EmailRecipient.objects.exists()


def test_a_suppressed_address_stays_suppressed_when_the_customer_opts_in(django_user_model):
    user = django_user_model.objects.create_user("ada", email="ada@example.com", password="x")
    EmailRecipient.objects.create(
        email="ada@example.com",
        consent_at=timezone.now(),
        consent_text="x",
        consent_source="popup",
        suppressed_at=timezone.now(),
        suppressed_reason="bounced",
    )
    recipient = audience.subscribe_customer(customer_request(user), "Email me")
    assert recipient.suppressed_at is not None and not recipient.receives("welcome")


def test_an_import_adds_valid_addresses_once_and_never_resubscribes(tmp_path):
    EmailRecipient.objects.create(
        email="gone@example.com",
        consent_at=timezone.now(),
        consent_text="x",
        consent_source="popup",
        unsubscribed_at=timezone.now(),
    )
    path = tmp_path / "list.csv"
    path.write_text(
        "\ufeffEmail,Consented_at,Name\n"
        "ada@example.com,2025-03-01T10:00:00+00:00,Ada\n"
        "ADA@example.com,,Ada again\n"
        "not-an-address,,\n"
        "gone@example.com,,\n"
        " bob@example.com ,2999-01-01,Bob\n",
        encoding="utf-8",
    )
    out = call_command_output(path, "Subscribed at the till")
    assert "2 added, 2 already known, 1 invalid (skipped)." in out
    ada = EmailRecipient.objects.get(email="ada@example.com")
    assert ada.consent_source == "import" and ada.consent_text == "Subscribed at the till"
    assert ada.consent_at == dt.datetime(2025, 3, 1, 10, tzinfo=dt.UTC)
    bob = EmailRecipient.objects.get(email="bob@example.com")
    assert bob.consent_at > timezone.now() - dt.timedelta(minutes=1)  # a future date: now
    assert EmailRecipient.objects.get(email="gone@example.com").unsubscribed_at is not None
    assert "added 0" not in call_command_output(path, "Subscribed at the till")
    assert EmailRecipient.objects.count() == 3  # a second import adds nothing


def call_command_output(path, consent: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("personalization_import_recipients", str(path), consent=consent, stdout=out)
    return out.getvalue()


def test_an_import_without_an_email_column_or_consent_is_refused(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("address\nada@example.com\n", encoding="utf-8")
    with pytest.raises(CommandError, match="no 'email' column"):
        call_command_output(path, "Subscribed")
    with pytest.raises(CommandError, match="agreed to"):
        call_command_output(path, "  ")
    with pytest.raises(CommandError, match="no such file"):
        call_command_output(tmp_path / "missing.csv", "Subscribed")
    assert not EmailRecipient.objects.exists()
