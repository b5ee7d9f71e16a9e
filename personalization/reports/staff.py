"""Which visitors are staff, for the report to leave out: those whose account has
``is_staff`` or ``is_superuser`` set, of the flags the project's user model has (a model
without ``PermissionsMixin`` has no ``is_superuser``; one may have neither)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q

FLAGS = ("is_staff", "is_superuser")


def flags() -> list[str]:
    """The staff flags that are boolean fields of the user model."""
    fields = {field.name: field for field in get_user_model()._meta.get_fields()}
    return [
        name
        for name in FLAGS
        if name in fields and fields[name].get_internal_type() == "BooleanField"
    ]


def lookups(prefix: str = "user__") -> list[str]:
    """The visitor lookups of those flags: ``user__is_staff``…"""
    return [prefix + name for name in flags()]


def is_staff_q(prefix: str = "user__") -> Q | None:
    """A filter for visitors of a staff account; None when the user model has no flag."""
    found = None
    for lookup in lookups(prefix):
        term = Q(**{lookup: True})
        found = term if found is None else found | term
    return found
