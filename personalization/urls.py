"""URLs the shop includes under its ``personalization/`` prefix."""

from django.urls import path

from . import fragments
from .api import offers, recommendations, reports, schema, views
from .emails import views as email_views
from .preview import views as preview_views

app_name = "personalization"

urlpatterns = [
    path("api/me/", views.MeView.as_view(), name="api-me"),
    path("api/signup/", offers.SignupView.as_view(), name="api-signup"),
    path("api/events/", offers.EventsView.as_view(), name="api-events"),
    path(
        "api/recommendations/",
        recommendations.RecommendationsView.as_view(),
        name="api-recommendations",
    ),
    path("api/report/", reports.ReportView.as_view(), name="api-report"),
    path("fragments/", fragments.fragments_view, name="fragments"),
    path("api/schema/", schema.PersonalizationSchemaView.as_view(), name="api-schema"),
    path("email/unsubscribe/<str:token>/", email_views.unsubscribe, name="email-unsubscribe"),
    path("email/c/<str:token>/", email_views.click, name="email-click"),
    path("email/o/<str:token>.gif", email_views.open_pixel, name="email-open"),
    path("email/confirm/<str:token>/", email_views.confirm, name="email-confirm"),
    path("preview/", preview_views.preview_view, name="preview"),
]
