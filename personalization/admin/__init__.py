"""Admin: targeting is edited by staff; visitors and logs are read-only."""

from . import (  # noqa: F401
    email,
    jobs,
    measurement,
    offers,
    recommendations,
    report,
    targeting,
    visitors,
)
