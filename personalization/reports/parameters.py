"""The report's query parameters, checked before anything reads the database: no control
characters anywhere (PostgreSQL refuses a NUL byte in a query), and a goal the shop knows."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.utils.translation import gettext as _

# C0 and C1 control characters and DEL: never part of a date, a goal name or a format.
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
PURCHASE = "purchase"
ANY_GOAL = "any"


class ParameterError(ValueError):
    """A report parameter that cannot be used; the message says why, for the person asking."""


def check_characters(params: Mapping[str, Any]) -> None:
    """Raise ParameterError when a parameter's name or one of its values holds a control
    character. ``params`` is a QueryDict (every value of a repeated parameter is checked) or
    a plain mapping."""
    for name in params:
        values: Iterable[Any] = (
            params.getlist(name) if hasattr(params, "getlist") else [params[name]]
        )
        for text in (name, *values):
            if CONTROL_CHARACTER.search(str(text)):
                raise ParameterError(
                    _(
                        "The parameter %(name)s holds a control character (such as a NUL "
                        "byte); remove it."
                    )
                    % {"name": _shown(name)}
                )


def check_goal(goal: str) -> None:
    """Raise ParameterError for a goal that is neither ``purchase``, ``any``, a name
    ``track.goal`` knows, nor the goal of a recorded conversion. One query, only for a name
    that is none of the others."""
    from ..models import Conversion
    from ..tracking import GOAL_KINDS

    if goal in (PURCHASE, ANY_GOAL) or goal in GOAL_KINDS:
        return
    if Conversion.objects.filter(goal=goal).exists():
        return
    raise ParameterError(
        _(
            "Unknown goal %(goal)s: use purchase, any, or the name of a goal recorded with "
            "track.goal()."
        )
        % {"goal": _shown(goal)}
    )


def _shown(text: str) -> str:
    """The text quoted for a message, control characters escaped, at most 60 characters."""
    shown = repr(str(text))
    return shown if len(shown) <= 60 else shown[:57] + "..."
