from django.apps import AppConfig


class CartConfig(AppConfig):
    name = "shop_demo.cart"
    label = "cart"
    verbose_name = "Cart"
