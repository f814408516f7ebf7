"""Number and flag columns as reads show them, whatever a hand edit left there.

README asks operators to repair rows with ``sqlite3``, and SQLite keeps any value in
any column: text in ``attempts``, ``"yes"`` in a 0/1 flag. One rule for every read (the
API, the console, ``/metrics``, the command line's lists), kept here so that no read
decides its own:

- a number column reads as the number it holds, text SQLite reads as one (``"3"``,
  ``" 12 "``) included but not text only Python's ``float()`` reads (``"1_000"``,
  ``"inf"``, ``"nan"``, digits of other scripts); any other value (text, bytes, a
  fraction or a number beyond SQLite's integers in a whole-number column) is shown
  as its stored text, which the API's schema allows there, so the operator sees what
  to repair;
- a flag is on when it holds a whole number other than 0 (hub writes 1); text that is
  no number (``"yes"``, which Python takes for true), bytes or nothing is off.

A value read by neither rule is logged once per process for each row, column and value
(``event=stored_value_unreadable``), not at every read.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Mapping

from hub import logs

log = logging.getLogger(__name__)

_LARGEST_INTEGER = 2**63 - 1
"""SQLite's largest integer: text of a larger whole number is stored as a real."""
_NUMBER_TEXT = re.compile(
    r"[ \t\n\v\f\r]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t\n\v\f\r]*"
)
"""Text SQLite takes for a number (as a column's numeric affinity converts it): ASCII
digits, a sign, a point and an exponent, ASCII white space around."""
_reported: set[tuple[str, str, str]] = set()
"""(column, row, value) already logged as unreadable."""


def number(row: Mapping[str, object], column: str, kind: type = int) -> int | float | str | None:
    """``row[column]`` as the ``kind`` of number it holds (``int`` or ``float``), or
    null; any other value as its text, logged once."""
    stored = row[column]
    if stored is None or type(stored) is kind:
        return stored
    read = _read(stored, kind)
    if read is None:
        _report(row, column, stored)
        return logs.text(stored)
    return read


def flag(row: Mapping[str, object], column: str) -> bool:
    """Whether the 0/1 column ``row[column]`` is on: only a whole number other than 0
    is, not text such as ``"no"`` that Python would take for true."""
    stored = row[column]
    if type(stored) is int:
        return stored != 0
    read = _read(stored, int)
    if read is None:
        _report(row, column, stored)
    return bool(read)


def _read(stored: object, kind: type) -> int | float | None:
    """The number ``stored`` holds (a number, or text SQLite reads as one; bytes hold
    none, as for SQLite), if it is a ``kind``: finite, and for ``int`` whole and within
    SQLite's integers (a larger one, stored as a real, would break a client reading
    64-bit integers)."""
    if stored is None or (isinstance(stored, str) and not _NUMBER_TEXT.fullmatch(stored)):
        return None
    with contextlib.suppress(OverflowError):
        if isinstance(stored, str):
            stored = float(stored)
        if isinstance(stored, int | float) and math.isfinite(stored):
            if kind is float:
                return float(stored)
            if float(stored).is_integer() and abs(stored) <= _LARGEST_INTEGER:
                return int(stored)
    return None


def _report(row: Mapping[str, object], column: str, stored: object) -> None:
    """Log once that ``column`` of this row holds a value read by neither rule: the row
    named by its id, or its name (none for a row read without either, such as an alert's
    history entry), and the value, which finds it with ``sqlite3``."""
    name = row.get("id", row.get("name"))
    key = (column, logs.text(name), logs.text(stored))
    if key in _reported:
        return
    _reported.add(key)
    named = "" if name is None else f" id={logs.value(name)}"
    log.warning(
        "event=stored_value_unreadable column=%s%s stored=%s", column, named, logs.value(stored)
    )
