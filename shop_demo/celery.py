"""Celery application of the demo shop.

Without ``CELERY_BROKER_URL`` in the environment tasks run eagerly (in-process), so the
demo needs no broker. With a broker: ``celery -A shop_demo worker -B -l info``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_demo.settings")

app = Celery("shop_demo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
