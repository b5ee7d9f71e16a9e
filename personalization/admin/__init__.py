"""Admin: targeting is edited by staff; visitors and logs are read-only."""

from . import measurement, targeting, visitors  # noqa: F401

try:  # offers (coupons, signups, referral codes)
    from . import offers  # noqa: F401
except ImportError:  # pragma: no cover - present in every release
    pass
