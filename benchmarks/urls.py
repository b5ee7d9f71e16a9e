"""The demo shop's URLs plus a bare page, for bench_middleware.py."""

from django.http import HttpResponse
from django.urls import path

from shop_demo.urls import urlpatterns as shop_patterns

urlpatterns = [
    path("bare/", lambda request: HttpResponse("bare page"), name="bare"),
    *shop_patterns,
]
