"""Reading amounts of money from whatever a shop passes (str, int, float, Decimal)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any


class AmountError(ValueError):
    """Not an amount: ``reason`` is ``"not-a-number"`` or ``"negative"``."""

    def __init__(self, value: Any, reason: str) -> None:
        super().__init__(f"Not an amount of money: {value!r}.")
        self.reason = reason


def parse_amount(value: Any) -> Decimal:
    """A finite, non-negative Decimal (floats go through ``str``, so 0.1 stays 0.1)."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise AmountError(value, "not-a-number") from None
    if not amount.is_finite() or amount < 0:
        raise AmountError(value, "negative")
    return amount
