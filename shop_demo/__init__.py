"""Demo shop used to try out and showcase django-personalization."""

from .celery import app as celery_app

__all__ = ("celery_app",)
