"""Celery tasks: thin wrappers over plain functions that management commands also call."""

from celery import shared_task

from .retention import purge_inactive_visitors


@shared_task(name="personalization.purge_inactive_visitors", ignore_result=False)
def purge_inactive_visitors_task() -> int:
    return purge_inactive_visitors()
