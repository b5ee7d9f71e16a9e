from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "shop_demo.orders"
    label = "orders"
    verbose_name = "Orders"
