"""Demo shop used to try out and showcase django-personalization. Its Celery app is loaded
where Celery is installed (an optional extra); without it the jobs run through
``manage.py personalization_jobs`` and in-process."""

import importlib.util

if importlib.util.find_spec("celery"):
    from .celery import app as celery_app

    __all__ = ("celery_app",)
