from django.apps import AppConfig


class PlainUserConfig(AppConfig):
    name = "tests.plainuser"
    label = "plainuser"
    default_auto_field = "django.db.models.BigAutoField"
