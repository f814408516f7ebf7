"""How the command line shows API answers to people: aligned tables and ``key: value``
lists. Scripts use ``--output json`` instead, which prints the API's answer as is."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

Columns = Sequence[tuple[str, str]]
"""(header, key) pairs: what each column shows, in order."""

_FRACTION = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d+Z$")


def table(rows: Sequence[Mapping[str, Any]], columns: Columns) -> str:
    """Rows as left-aligned columns under upper-case headers, like ``amtool``."""
    lines = [[header.upper() for header, _ in columns]]
    lines += [[cell(row.get(key)) for _, key in columns] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def fields(record: Mapping[str, Any], names: Columns) -> str:
    """One record as ``label: value`` lines, for a single incident or silence."""
    width = max(len(label) for label, _ in names) + 1
    return "\n".join(
        f"{label + ':':<{width}} {cell(record.get(key))}".rstrip() for label, key in names
    )


def cell(value: Any) -> str:
    """One value on one line: labels as ``k=v``, times to the second, nothing as ``-``."""
    if value is None or value == "":
        return "-"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={_inner(v)}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return " ".join(cell(item) for item in value)
    text = " ".join(str(value).split())
    return _FRACTION.sub(r"\1Z", text)


def _inner(value: Any) -> str:
    """A mapping inside a mapping keeps its braces: ``group={service=api}``."""
    return "{" + cell(value) + "}" if isinstance(value, Mapping) else cell(value)


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
