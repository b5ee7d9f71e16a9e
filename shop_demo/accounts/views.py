"""Sign up and the customer's order history (log in/out are django.contrib.auth views)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from personalization import referrals, track
from shop_demo.orders.models import Order
from shop_demo.views import safe_next_url

from .forms import SignUpForm


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return HttpResponseRedirect("/")
    if request.method == "POST":
        form = SignUpForm(request.POST)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            track.goal(request, "account_signup")
            messages.success(request, f"Welcome, {user.get_username()}! Your account is ready.")
            return HttpResponseRedirect(safe_next_url(request))
    else:
        form = SignUpForm()
    return render(request, "accounts/signup.html", {"form": form})


@login_required
def my_orders(request: HttpRequest) -> HttpResponse:
    orders = (
        Order.objects.filter(user=request.user)
        .annotate(line_count=Count("lines"))
        .order_by("-created_at")
    )
    page = Paginator(orders, 20).get_page(request.GET.get("page"))
    code = referrals.code_for_user(request.user)
    return render(
        request,
        "accounts/my_orders.html",
        {
            "page_obj": page,
            "orders": page.object_list,
            "referral_link": referrals.referral_link(request, code),
        },
    )
