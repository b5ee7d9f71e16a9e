"""Shared admin pieces."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import models


class ReadOnlyAdmin(admin.ModelAdmin):
    """For logs and profiles: staff can look, filter and delete, never edit or invent rows."""

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


def user_search_fields(relation: str = "user") -> list[str]:
    """Search lookups for the user behind ``relation``, whatever the project's user model:
    its ``USERNAME_FIELD`` and ``EMAIL_FIELD``, each only where it is a text field the model
    has (a model that logs in by email has no ``username``; one may have no email at all)."""
    user_model = get_user_model()
    email_field = getattr(user_model, "get_email_field_name", None)  # "email" when not set
    names = [
        getattr(user_model, "USERNAME_FIELD", None),
        email_field() if email_field else getattr(user_model, "EMAIL_FIELD", "email"),
    ]
    lookups: list[str] = []
    for name in names:
        if not name:
            continue
        try:
            field = user_model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        lookup = f"{relation}__{field.name}"
        if isinstance(field, models.CharField | models.TextField) and lookup not in lookups:
            lookups.append(lookup)
    return lookups
