"""Views the tests drive through the real middleware stack."""

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404

from personalization import track

from .models import Book, Product


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("plain page")


def profile(request: HttpRequest) -> JsonResponse:
    visitor = request.visitor
    return JsonResponse(
        {
            "id": visitor.id,
            "is_first_visit": visitor.is_first_visit,
            "visit_count": visitor.visit_count,
            "source": visitor.referrer.source,
            "host": visitor.referrer.host,
            "campaign": visitor.referrer.campaign,
            "country": visitor.geo.country_code,
            "city": visitor.geo.city,
            "recently_viewed": visitor.recently_viewed,
            "session_views": visitor.session_views,
            "top_categories": visitor.top_categories,
            "in_control_group": visitor.in_control_group,
            "is_bot": visitor.is_bot,
            "segments": sorted(visitor.segments),
        }
    )


def product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    from django.shortcuts import render

    product = get_object_or_404(Product.objects.select_related("category"), slug=slug)
    if request.GET.get("read"):  # a page that reads the profile (personalized content would)
        request.visitor.visit_count  # noqa: B018
    return render(request, "testapp/product.html", {"product": product})


def product_with_recommendations(request: HttpRequest, slug: str) -> HttpResponse:
    from django.shortcuts import render

    product = get_object_or_404(Product.objects.select_related("category"), slug=slug)
    return render(request, "testapp/product_recommendations.html", {"product": product})


def product_with_a_clash(request: HttpRequest, slug: str) -> HttpResponse:
    """A product page whose exposure cannot be written: its id is taken by the time the
    middleware writes the page's rows (a real database error, as a failing database gives)."""
    from personalization.models import Exposure
    from personalization.tracking import record_exposure

    product = get_object_or_404(Product, slug=slug)
    exposure_id = record_exposure(request, placement="clash", kind="banner", content="default")
    Exposure.objects.create(
        id=exposure_id,
        visitor_id=request.visitor.id,
        placement="clash",
        kind="banner",
        content="default",
    )
    return HttpResponse(f"product {product.name}")


def product_by_pk(request: HttpRequest, pk: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=pk)
    return HttpResponse(f"product {product.name}")


def book_detail(request: HttpRequest, isbn: str) -> HttpResponse:
    book = Book.objects.filter(isbn=isbn).first()
    if book is None:
        raise Http404
    track.product_view(request, book)
    return HttpResponse(f"book {book.title}")


def whoami(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(request.user.pk if request.user.is_authenticated else "anonymous"))


async def async_profile(request: HttpRequest) -> JsonResponse:
    visitor = request.visitor
    return JsonResponse({"id": visitor.id, "visit_count": visitor.visit_count})


def category_listing(request: HttpRequest, slug: str) -> HttpResponse:
    from django.shortcuts import render

    products = Product.objects.filter(category__slug=slug).select_related("category")[:12]
    return render(request, "testapp/listing.html", {"products": products, "slug": slug})


def banner_page(request: HttpRequest) -> HttpResponse:
    from django.shortcuts import render

    return render(request, "testapp/banner_page.html")


def cached_page(request: HttpRequest) -> HttpResponse:
    """A page for Django's per-site cache: a banner, the popup and the script (PAGE_CACHE)."""
    from django.shortcuts import render

    return render(request, "testapp/cached_page.html")


def popup_page(request: HttpRequest) -> HttpResponse:
    from django.shortcuts import render

    return render(request, "testapp/popup_page.html")


def place_order(request: HttpRequest) -> HttpResponse:
    """A checkout in one line: records the posted order for the visitor."""
    order_id, total = request.POST["order_id"], request.POST["total"]
    conversion = track.order(request, order_id=order_id, total=total)
    return HttpResponse(str(conversion.pk if conversion else ""), status=201)


def add_to_cart(request: HttpRequest, slug: str) -> HttpResponse:
    """A cart in one line: records the addition for the visitor."""
    product = get_object_or_404(Product, slug=slug)
    track.add_to_cart(request, product, quantity=int(request.POST.get("quantity") or 1))
    return HttpResponse("added", status=201)
