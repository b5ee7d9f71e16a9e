"""``tests.customuser.settings`` with a user model without ``PermissionsMixin``
(``plainuser.PlainUser``)."""

from tests.customuser.settings import *  # noqa: F403
from tests.customuser.settings import INSTALLED_APPS

INSTALLED_APPS = [*(app for app in INSTALLED_APPS if app != "tests.customuser"), "tests.plainuser"]
AUTH_USER_MODEL = "plainuser.PlainUser"
