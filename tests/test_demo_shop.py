"""The demo shop: seeding, browsing with a profile, cart, checkout, and the DEBUG-only
pretend-country switch."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from personalization.testutils import DEMO_IPS
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(demo):
    from shop_demo.catalog.models import Category, Product

    camping = Category.objects.create(name="Camping", slug="camping", position=1)
    kitchen = Category.objects.create(name="Kitchen", slug="kitchen", position=2)
    products = [
        Product.objects.create(
            name=f"Tent {i}", slug=f"tent-{i}", category=camping, price=Decimal("99.90"), stock=5
        )
        for i in range(3)
    ]
    products.append(
        Product.objects.create(
            name="Cast Iron Pan", slug="pan", category=kitchen, price=Decimal("39.50"), stock=2
        )
    )
    return products


def test_demo_setup_seeds_a_real_catalog_once(demo, tmp_path):
    from django.core.management import call_command

    from shop_demo.catalog.models import Category, Product

    demo.PERSONALIZATION = {**demo.PERSONALIZATION, "GEOIP_PATH": str(tmp_path / "g.mmdb")}
    call_command("demo_setup", verbosity=0)
    assert Category.objects.count() >= 8
    assert Category.objects.filter(slug="camping").exists()
    assert Product.objects.count() >= 120
    assert not Product.objects.filter(image="").exists()
    assert_every_product_has_a_picture_of_its_own()
    assert (tmp_path / "g.mmdb").stat().st_size > 0
    first = list(Product.objects.order_by("pk").values_list("slug", "price", "image"))
    call_command("demo_setup", verbosity=0)
    assert list(Product.objects.order_by("pk").values_list("slug", "price", "image")) == first


# What the pictures of a few kinds of product must show (Lucide icon names).
PICTURED = {"2-Person Tent": "tent", "Travel Mug": "cup-soda", "Wall Clock": "clock",
            "Bike Helmet": "hard-hat", "Dumbbell Pair": "dumbbell"}  # fmt: skip


def assert_every_product_has_a_picture_of_its_own():
    """Every product has a picture; in each department no two pictures are the same file,
    and each shows its own kind of product (no icon serves two kinds in a department)."""
    import hashlib
    import io
    import re

    from django.core.files.storage import default_storage
    from PIL import Image

    from shop_demo.catalog.demo_data import ART
    from shop_demo.catalog.models import Category

    seen = set()
    for category in Category.objects.prefetch_related("products"):
        products = list(category.products.all())
        digests, icons_of_kind = set(), {}
        for product in products:
            with default_storage.open(product.image.name) as file:
                data = file.read()
            digests.add(hashlib.sha256(data).hexdigest())
            with Image.open(io.BytesIO(data)) as picture:
                assert picture.size == (480, 480)
                comment = picture.info["comment"].decode()
            kind = max((k for k in ART if product.name.endswith(f" {k}")), key=len)
            icon = re.search(r"icon ([a-z0-9-]+)", comment).group(1)
            assert icon in ART[kind][1], (product.name, icon)
            icons_of_kind.setdefault(kind, set()).add(icon)
        assert len(digests) == len(products) >= 15, category.slug  # pairwise distinct
        icons = [icon for kind_icons in icons_of_kind.values() for icon in kind_icons]
        assert len(icons) == len(set(icons)) and len(icons_of_kind) == 8, icons_of_kind
        for kind in PICTURED.keys() & icons_of_kind.keys():
            assert PICTURED[kind] in icons_of_kind[kind], (kind, icons_of_kind[kind])
            seen.add(kind)
    assert seen == PICTURED.keys()


def test_a_picture_shows_its_product_s_icon():
    """Only the icon changed: the picture changes where the product is drawn."""
    import dataclasses
    import io

    from PIL import Image, ImageChops, ImageStat

    from shop_demo.catalog.demo_data import CATEGORIES, product_specs
    from shop_demo.catalog.demo_images import render_product_image

    for spec in product_specs(CATEGORIES[0])[:4] + product_specs(CATEGORIES[-1])[:2]:
        picture = render_product_image(spec)
        assert render_product_image(spec) == picture  # the same bytes on every run
        other = render_product_image(dataclasses.replace(spec, icon="coffee"))
        a, b = (Image.open(io.BytesIO(data)).convert("L") for data in (picture, other))
        middle = ImageChops.difference(a, b).crop((120, 120, 360, 360))
        assert ImageStat.Stat(middle).mean[0] > 8, spec.name


def test_demo_setup_redraws_its_older_pictures_but_keeps_uploaded_ones(demo):
    import io

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from PIL import Image

    from shop_demo.catalog.demo_data import CATEGORIES, product_specs
    from shop_demo.catalog.demo_images import is_current_picture
    from shop_demo.catalog.management.commands.demo_setup import Command
    from shop_demo.catalog.models import Category, Product

    camping = Category.objects.create(name="Camping", slug="camping")
    older, uploaded = product_specs(CATEGORIES[0])[:2]
    buffer = io.BytesIO()
    Image.new("RGB", (480, 480), (46, 139, 87)).save(buffer, format="JPEG")  # one per department
    for spec, name in ((older, f"products/{older.slug}.jpg"), (uploaded, "products/mine.jpg")):
        stored = default_storage.save(name, ContentFile(buffer.getvalue()))
        Product.objects.create(name=spec.name, slug=spec.slug, category=camping,
                               price=spec.price, image=stored)  # fmt: skip
    Command(stdout=io.StringIO()).setup_catalog()
    redrawn = Product.objects.get(slug=older.slug).image.name
    assert redrawn == f"products/{older.slug}.jpg" and is_current_picture(redrawn)
    assert Product.objects.get(slug=uploaded.slug).image.name == "products/mine.jpg"
    assert not is_current_picture("products/mine.jpg")


def test_browsing_fills_the_profile(catalog):
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    assert client.get("/").status_code == 200
    assert client.get("/categories/camping/").status_code == 200
    tent, pan = catalog[0], catalog[3]
    assert client.get(f"/products/{tent.slug}/").status_code == 200
    assert client.get(f"/products/{pan.slug}/").status_code == 200
    assert client.get("/products/no-such-product/").status_code == 404
    me = client.get("/personalization/api/me/").json()
    assert me["recently_viewed"] == [pan.pk, tent.pk]
    assert set(me["top_categories"]) == {"camping", "kitchen"}
    results = client.get("/search/", {"q": "tent"})
    assert results.status_code == 200
    assert b"Tent 1" in results.content


def checkout_data(client: Client, coupon: str = "") -> dict:
    """The checkout form as a customer fills it in (the offered coupon, if any, kept)."""
    page = client.get("/checkout/")
    assert page.status_code == 200
    form = page.context["form"]
    return {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "street": "1 Analytical Way",
        "postal_code": "10115",
        "city": "Berlin",
        "country": "DE",
        "token": form["token"].value(),
        "coupon": coupon or form["coupon"].value() or "",
    }


def test_cart_and_checkout_create_one_order(catalog):
    from shop_demo.orders.models import Order

    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    tent = catalog[0]
    assert client.post(f"/cart/add/{tent.pk}/", {"quantity": 2}).status_code == 302
    data = checkout_data(client)
    first = client.post("/checkout/", data)
    assert first.status_code == 302
    again = client.post("/checkout/", data)  # a double submit
    assert again.status_code == 302
    order = Order.objects.get()
    assert order.total == Decimal("199.80")
    assert [(line.product_id, line.quantity) for line in order.lines.all()] == [(tent.pk, 2)]
    assert client.get(first["Location"]).status_code == 200
    stranger = Client(HTTP_USER_AGENT=BROWSER_UA)
    assert stranger.get(first["Location"]).status_code == 404


def test_pretending_a_country_works_only_in_debug(catalog, demo):
    demo.DEBUG = True
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    client.post("/demo/pretend/", {"country": "GB"})
    me = client.get("/personalization/api/me/").json()
    assert me["location"]["country_code"] == "GB"

    demo.DEBUG = False
    assert client.post("/demo/pretend/", {"country": "DE"}).status_code == 404
    me = client.get("/personalization/api/me/").json()
    assert me["location"]["country_code"] is None  # the session's address is ignored
    assert DEMO_IPS["GB"]


def checkout(client: Client, coupon: str = ""):
    return client.post("/checkout/", checkout_data(client, coupon))


def test_a_signup_coupon_is_redeemed_once_and_the_order_tracked_once(catalog):
    from personalization.models import Conversion, Coupon
    from shop_demo.orders.models import Order

    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    client.get("/")
    client.get("/")  # the visitor's cookie came back
    signup = client.post(
        "/personalization/api/signup/",
        {"email": "ada@example.com"},
        content_type="application/json",
    )
    code = signup.json()["coupon_code"]
    tent = catalog[0]
    client.post(f"/cart/add/{tent.pk}/", {"quantity": 1})
    assert checkout(client, code.lower()).status_code == 302
    order = Order.objects.get()
    assert (order.discount, order.total) == (Decimal("9.99"), Decimal("89.91"))
    assert Coupon.objects.get(code=code).redeemed_order_id == order.number
    purchase = Conversion.objects.get(kind="purchase")
    assert (purchase.order_id, purchase.revenue) == (order.number, Decimal("89.91"))
    # The same coupon again: refused, and no order is placed.
    client.post(f"/cart/add/{tent.pk}/", {"quantity": 1})
    response = checkout(client, code)
    assert Order.objects.count() == 1
    assert response.status_code == 302 and response["Location"] == "/cart/"


def test_a_referred_friend_gets_a_welcome_coupon_and_the_referrer_a_reward(
    catalog, django_capture_on_commit_callbacks, mailoutbox
):
    from django.contrib.auth import get_user_model

    from personalization.models import Coupon
    from shop_demo.catalog.demo_targeting import setup_targeting

    setup_targeting()
    referrer = get_user_model().objects.create_user("grace", "grace@example.com", "pw")
    host = Client(HTTP_USER_AGENT=BROWSER_UA)
    host.force_login(referrer)
    host.get(f"/products/{catalog[3].slug}/")  # viewed but never bought: the reward's product
    link = host.get("/accounts/orders/").context["referral_link"]
    code = link.rsplit("ref=", 1)[1]

    friend = Client(HTTP_USER_AGENT=BROWSER_UA)
    home = friend.get(f"/?ref={code}")
    assert b"A friend sent you 10% off." in home.content
    friend.post(f"/cart/add/{catalog[0].pk}/", {"quantity": 1})
    welcome = friend.get("/checkout/").context["form"]["coupon"].value()
    assert Coupon.objects.get(code=welcome).source == "referral-welcome"
    with django_capture_on_commit_callbacks(execute=True):
        assert checkout(friend).status_code == 302
    reward = Coupon.objects.get(source="referral-reward")
    assert reward.product_ids == [catalog[3].pk]
    assert len(mailoutbox) == 1 and reward.code in mailoutbox[0].body


@pytest.fixture
def shop_with_history(demo):
    """The demo's catalogue, targeting and a month of seeded history, lists computed."""
    from personalization.recommendations import precompute
    from shop_demo.catalog.demo_history import seed_history
    from shop_demo.catalog.demo_targeting import setup_targeting
    from shop_demo.catalog.models import Category, Product

    for slug in ("camping", "coffee-tea", "electronics", "kitchen"):
        category = Category.objects.create(name=slug.title(), slug=slug)
        for n in range(6):
            Product.objects.create(name=f"{slug} {n}", slug=f"{slug}-{n}", category=category,
                                   price=Decimal("10.00"), stock=50)  # fmt: skip
    setup_targeting()
    assert seed_history(visitors=400) > 1000
    assert seed_history(visitors=400) == 0  # once
    precompute.recompute_all()
    return Product.objects.order_by("pk")


def recommended(html: str, placement: str) -> list[str]:
    """Product slugs in the recommendations section of ``placement``."""
    import re

    marker = f'data-personalization-placement="{placement}"'
    if marker not in html:
        return []
    section = html.split(marker, 1)[1].split("</section>", 1)[0]
    return re.findall(r'href="/products/([^/"]+)/"', section)


def test_recommendations_on_home_product_cart_and_confirmation(shop_with_history):
    from personalization.models import Exposure

    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    home = client.get("/").content.decode()
    assert len(recommended(home, "home-for-you")) == 4
    department = client.get("/categories/kitchen/").content.decode()
    picks = recommended(department, "category-picks")
    assert len(picks) == 4 and picks[0].startswith("kitchen")
    assert "Picked for you" in home
    product = shop_with_history.first()
    page = client.get(f"/products/{product.slug}/").content.decode()
    together = recommended(page, "product-viewed-together")
    assert together and product.slug not in together
    assert recommended(page, "product-bought-together") != []
    client.post(f"/cart/add/{product.pk}/", {"quantity": 1})
    cart = client.get("/cart/").content.decode()
    complete = recommended(cart, "cart-complete")
    assert len(complete) == 4 and product.slug not in complete  # the cart is left out
    response = checkout(client)
    confirmation = client.get(response["Location"]).content.decode()
    assert len(recommended(confirmation, "order-confirmation")) == 4
    placements = set(
        Exposure.objects.filter(kind="recommendation").values_list("placement", flat=True)
    )
    assert {
        "home-for-you",
        "product-viewed-together",
        "cart-complete",
        "order-confirmation",
    } <= placements


def test_popular_near_you_follows_the_pretended_country(shop_with_history, demo):
    demo.DEBUG = True
    near = {}
    for country in ("GB", "US"):
        client = Client(HTTP_USER_AGENT=BROWSER_UA)
        client.post("/demo/pretend/", {"country": country})
        near[country] = recommended(client.get("/").content.decode(), "home-near-you")
    assert near["GB"] and near["US"]
    assert near["GB"] != near["US"]
    assert any(slug.startswith("coffee-tea") for slug in near["GB"][:2])  # British tastes
    assert any(slug.startswith("electronics") for slug in near["US"][:2])


def test_the_demo_shows_the_email_a_visitor_s_browsing_produced(catalog, clock, admin_client):
    """As docs/getting-started.md tells someone trying the demo: sign up in the popup, view
    products, wait five minutes, run the emails job in the admin; the email is in the outbox, its
    links lead back into the demo."""
    import re

    from django.core import mail

    from personalization import jobs
    from personalization.models import EmailSend

    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    client.get("/")
    client.get("/")
    response = client.post(
        "/personalization/api/signup/",
        {"email": "ada@example.com", "consent": "Email me offers. Unsubscribe any time."},
        content_type="application/json",
    )
    assert response.status_code == 201
    mail.outbox.clear()
    for tent in catalog[:2]:
        clock.shift(20)
        assert client.get(f"/products/{tent.slug}/").status_code == 200
    clock.shift(5 * 60 + 1)
    # What Periodic jobs › Run the selected jobs now runs (after the admin's request).
    assert jobs.run("emails")["sent"] == 2  # the welcome and the browse-abandonment email
    sends = {send.flow: send for send in EmailSend.objects.all()}
    browse = sends["browse_abandonment"]
    assert browse.status == EmailSend.SENT and "Tent 0" in browse.body_text
    page = admin_client.get(f"/admin/personalization/emailsend/{browse.pk}/change/")
    assert page.status_code == 200 and b"Tent 1" in page.content
    site = r"http://127\.0\.0\.1:8000"
    link = re.search(site + r"(/personalization/email/c/[^\s]+/)", browse.body_text)
    response = client.get(link.group(1))
    assert response.status_code == 302 and response["Location"].startswith("/products/tent-")


def test_merchandising_rules_shape_the_demo_s_blocks(shop_with_history):
    from personalization.models import Placement, PlacementRule

    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    viewed = ["kitchen-1", "camping-2"]
    for slug in viewed:
        client.get(f"/products/{slug}/")
    home = Placement.objects.get(slug="home-for-you")
    for values in (
        {"kind": PlacementRule.PIN, "product_key": "", "position": 1},
        {"kind": PlacementRule.EXCLUDE_CATEGORY, "category_key": "coffee-tea"},
        {"kind": PlacementRule.EXCLUDE_VIEWED},
    ):
        if values["kind"] == PlacementRule.PIN:
            values["product_key"] = str(shop_with_history.get(slug="electronics-5").pk)
        rule = PlacementRule(placement=home, **values)
        rule.full_clean()
        rule.save()
    shown = recommended(client.get("/").content.decode(), "home-for-you")
    assert len(shown) == 4
    assert shown[0] == "electronics-5"
    assert not any(slug.startswith("coffee-tea") for slug in shown)
    assert not set(viewed) & set(shown)
