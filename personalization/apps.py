"""App configuration: wires checks and signal receivers in ready(), nothing at import."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PersonalizationConfig(AppConfig):
    name = "personalization"
    verbose_name = _("Personalization")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, receivers, referrals  # noqa: F401  (registers checks, receivers)

        receivers.connect_product_receivers()
        receivers.connect_targeting_receivers()
        referrals.connect_receivers()
