"""The sandbox shop without the Django admin (where the conversion report lives)."""

from django.apps import apps
from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("personalization/", include("personalization.urls")),
    path("", include(apps.get_app_config("oscar").urls[0])),
]
