"""A user model without ``PermissionsMixin`` (no ``is_superuser``, no groups), as shops whose
staff may do everything have."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager
from django.db import models


class PlainUserManager(BaseUserManager["PlainUser"]):
    def create_user(self, email: str, password: str | None = None, **fields: Any) -> PlainUser:
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user


class PlainUser(AbstractBaseUser):
    """Staff may do everything: ``has_perm`` follows ``is_staff``."""

    email = models.EmailField(unique=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = PlainUserManager()

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return self.is_active and self.is_staff

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_active and self.is_staff

    def __str__(self) -> str:
        return self.email
