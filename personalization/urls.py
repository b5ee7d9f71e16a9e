"""URLs the shop includes under its ``personalization/`` prefix."""

from django.urls import path

from .api import views

app_name = "personalization"

urlpatterns = [
    path("api/me/", views.MeView.as_view(), name="api-me"),
]
