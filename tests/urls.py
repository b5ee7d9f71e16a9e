from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from tests.testapp import views

shop_patterns = (
    [
        path("products/<slug:slug>/", views.product_detail, name="product"),
        path("p/<int:pk>/", views.product_by_pk, name="product-by-pk"),
        path(
            "products/<slug:slug>/with-recommendations/",
            views.product_with_recommendations,
            name="product-recs",
        ),
        path("products/<slug:slug>/clash/", views.product_with_a_clash, name="product-clash"),
        path("books/<str:isbn>/", views.book_detail, name="book"),
        path("categories/<slug:slug>/", views.category_listing, name="category"),
    ],
    "shop",
)

urlpatterns = [
    path("", views.plain, name="plain"),
    path("profile/", views.profile, name="profile"),
    path("whoami/", views.whoami, name="whoami"),
    path("banner-page/", views.banner_page, name="banner-page"),
    path("async-profile/", views.async_profile, name="async-profile"),
    path("popup-page/", views.popup_page, name="popup-page"),
    path("cached-page/", views.cached_page, name="cached-page"),
    path("order/", views.place_order, name="order"),
    path("cart/add/<slug:slug>/", views.add_to_cart, name="cart-add"),
    path("", include(shop_patterns)),
    path("login/", auth_views.LoginView.as_view(template_name="testapp/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="/"), name="logout"),
    path("admin/", admin.site.urls),
    path("personalization/", include("personalization.urls")),
]
