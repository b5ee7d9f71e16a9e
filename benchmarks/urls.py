"""URLs for bench_middleware.py: the demo shop, plus pages without personalized content."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path

from shop_demo.catalog.models import Product
from shop_demo.urls import urlpatterns as shop_patterns


def bare(request):
    return HttpResponse("bare page")


def plain_category(request, slug):
    products = Product.objects.filter(category__slug=slug).select_related("category")[:12]
    return render(request, "testapp/listing.html", {"products": products, "slug": slug})


def plain_product(request, slug):
    product = get_object_or_404(Product.objects.select_related("category"), slug=slug)
    return render(request, "testapp/product.html", {"product": product})


urlpatterns = [
    path("bare/", bare, name="bare"),
    path("plain/categories/<slug:slug>/", plain_category, name="plain-category"),
    path("plain/products/<slug:slug>/", plain_product, name="plain-product"),
    *shop_patterns,
]
