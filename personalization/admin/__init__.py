"""Admin: targeting is edited by staff; visitors and logs are read-only."""

from . import jobs, measurement, offers, recommendations, report, targeting, visitors  # noqa: F401
