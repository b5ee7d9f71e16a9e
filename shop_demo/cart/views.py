"""Cart page and the POST endpoints that change the cart."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from personalization import track
from shop_demo.catalog.models import Product
from shop_demo.views import safe_next_url

from .cart import Cart
from .forms import AddToCartForm, UpdateCartForm


def cart_detail(request: HttpRequest) -> HttpResponse:
    cart = Cart(request)
    return render(request, "cart/cart.html", {"cart": cart, "lines": cart.lines})


@require_POST
def cart_add(request: HttpRequest, product_id: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=product_id)
    form = AddToCartForm(request.POST)
    quantity = form.cleaned_data["quantity"] if form.is_valid() else 1
    if not product.in_stock:
        messages.error(request, f"Sorry, {product.name} is currently not available.")
        return HttpResponseRedirect(product.get_absolute_url())
    cart = Cart(request)
    before = cart.quantity_of(product)
    after = cart.add(product, quantity)
    if after == before:
        messages.warning(request, f"You already have all {after} we have of {product.name}.")
    elif after < before + quantity:
        messages.warning(
            request, f"Only {product.stock} of {product.name} in stock; {after} in your cart."
        )
    else:
        messages.success(request, f"Added {product.name} to your cart.")
    if after > before:
        track.add_to_cart(request, product, after - before)
    return HttpResponseRedirect(safe_next_url(request, fallback=reverse("cart:detail")))


@require_POST
def cart_update(request: HttpRequest, product_id: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=product_id)
    form = UpdateCartForm(request.POST)
    cart = Cart(request)
    if form.is_valid():
        wanted = form.cleaned_data["quantity"]
        now = cart.update(product, wanted)
        if now < wanted:
            messages.warning(request, f"Only {product.stock} of {product.name} in stock.")
        elif now == 0:
            messages.info(request, f"Removed {product.name} from your cart.")
    else:
        messages.error(request, "Please enter a quantity between 0 and 99.")
    return HttpResponseRedirect(reverse("cart:detail"))


@require_POST
def cart_remove(request: HttpRequest, product_id: int) -> HttpResponse:
    cart = Cart(request)
    cart.remove(product_id)
    product = Product.objects.filter(pk=product_id).first()
    if product is not None:
        messages.info(request, f"Removed {product.name} from your cart.")
    return HttpResponseRedirect(reverse("cart:detail"))
