"""CSV that a spreadsheet opens as data: every CSV export writes its rows with :class:`SafeWriter`.

A spreadsheet evaluates a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(``=HYPERLINK(...)`` in a user agent or a tag would run in the reader's spreadsheet), and a
leading tab or carriage return can hide such a start from a naive check. Following OWASP's
CSV-injection guidance, a cell starting with one of :data:`FORMULA_LEADS` (the ASCII ones
and their full-width forms, which some spreadsheets also accept) is prefixed with a single
quote, so it is shown as text. Quoting itself is the ``csv`` module's (minimal quoting).
A reader that wants the original value drops one leading ``'`` before such a character.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Protocol

FORMULA_LEADS = frozenset("=+-@\t\r" + "\uff1d\uff0b\uff0d\uff20")
QUOTE = "'"


class _Text(Protocol):
    def write(self, s: str, /) -> int: ...


def safe_cell(value: str) -> str:
    """``value`` as a cell no spreadsheet evaluates."""
    return QUOTE + value if value[:1] in FORMULA_LEADS else value


class SafeWriter:
    """A ``csv.writer`` (CRLF line ends) that neutralises formula-leading cells."""

    def __init__(self, out: _Text) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row: Iterable[str]) -> None:
        self._writer.writerow([safe_cell(cell) for cell in row])
