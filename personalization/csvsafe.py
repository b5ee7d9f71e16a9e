"""CSV that a spreadsheet cannot run: every CSV the app writes goes through ``writer()``.

A spreadsheet reads a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula (OWASP "CSV injection"); some locales also read the full-width forms so.
A spreadsheet that splits lines on another separator than the comma (``;`` in much of Europe,
a tab, a pipe) ignores the comma format's quotes, so a formula may also start after any of
these inside a cell, or after a line break; blanks and quotes before it do not stop it.
"""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
INNER_FORMULA = re.compile(r"([;,\t|\r\n；，])([\s\"]*)(?=[=+\-@＝＋－＠])")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def neutralize(value: Any) -> Any:
    """A cell a spreadsheet cannot run: text that could start a formula gets a leading ',
    at its start and after any separator or line break inside it (``Spring sale;=cmd|…``
    becomes ``Spring sale;'=cmd|…``, which a spreadsheet splitting on ";" reads as text).

    Numbers stay numbers (a lift of -0.2 is data, not a formula); only text is changed.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    text = INNER_FORMULA.sub(r"\1\2'", str(value))
    if text.startswith(FORMULA_STARTS) or text.lstrip(' "').startswith(FORMULA_STARTS):
        return "'" + text
    return text


class SafeWriter:
    """``csv.writer`` that neutralizes every cell and quotes every text cell, so that a
    separator inside a text stays inside its cell for any reader that honours quotes."""

    def __init__(self, file: _Writable) -> None:
        self._writer = csv.writer(file, quoting=csv.QUOTE_NONNUMERIC)

    def writerow(self, row: Any) -> Any:
        return self._writer.writerow([neutralize(value) for value in row])

    def writerows(self, rows: Any) -> None:
        for row in rows:
            self.writerow(row)


def writer(file: _Writable) -> SafeWriter:
    """The writer for every CSV the app produces (an HttpResponse is a file)."""
    return SafeWriter(file)
