from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "shop_demo.accounts"
    label = "accounts"
    verbose_name = "Accounts"
