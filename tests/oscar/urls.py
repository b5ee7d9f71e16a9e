"""The sandbox shop's URLs: Oscar's, the admin (where the conversion report lives), the
personalization API and one page the tests measure the recommendations tag on."""

from django.apps import apps
from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("personalization/", include("personalization.urls")),
    path("measure/recommendations/", views.measured_recommendations),
    path("", include(apps.get_app_config("oscar").urls[0])),
]
