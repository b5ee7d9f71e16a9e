"""URLs of the demo shop."""

import importlib.util

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from . import views

admin.site.site_header = "Demo shop admin"
admin.site.site_title = "Demo shop admin"
admin.site.index_title = "Shop administration"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("shop_demo.accounts.urls")),
    path("cart/", include("shop_demo.cart.urls")),
    path("", include("shop_demo.orders.urls")),
    path("demo/pretend/", views.pretend_country, name="demo-pretend"),
    path("", include("shop_demo.catalog.urls")),
]

# The personalization app's own views (API, tracking endpoints), when it ships them.
if importlib.util.find_spec("personalization.urls") is not None:
    urlpatterns.insert(1, path("personalization/", include("personalization.urls")))

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
