"""Settings for the HTTP benchmark: the demo shop's production settings (from the environment,
as ``bench_http.py`` sets it), with ``PZN_BENCH_MIDDLEWARE=off`` the same shop without
VisitorMiddleware: its pages then render the defaults (no profile, no exposure, no write)."""

import os

from shop_demo.settings import *  # noqa: F403
from shop_demo.settings import MIDDLEWARE

if os.environ.get("PZN_BENCH_MIDDLEWARE") == "off":
    MIDDLEWARE = [name for name in MIDDLEWARE if not name.endswith(".VisitorMiddleware")]
