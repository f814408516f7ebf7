"""Label matchers in Alertmanager's syntax: ``name="v"``, ``name!="v"``, ``name=~"re"``,
``name!~"re"``, alone or as a set ``{a="b", c=~"d|e"}``.

Semantics follow Alertmanager: a missing label has the value ""; regular expressions
are fully anchored (``=~"api"`` does not match "api-v2").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Operator = Literal["=", "!=", "=~", "!~"]

_MATCHER = re.compile(
    r"""\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*
        (?P<op>=~|!~|!=|=)\s*
        (?P<value>"(?:[^"\\]|\\.)*"|[^,"}\s][^,}]*?|)\s*(?:,|$)""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Matcher:
    """One label condition; ``pattern`` is compiled for the regex operators."""

    name: str
    op: Operator
    value: str
    pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.pattern is not None
        found = self.pattern.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def parse(text: str) -> list[Matcher]:
    """Parse one matcher or a comma-separated set, with or without braces.

    Raises ValueError with a message that quotes the offending text.
    """
    body = text.strip()
    if body.startswith("{"):
        if not body.endswith("}"):
            raise ValueError(f"unclosed '{{' in matcher {text!r}")
        body = body[1:-1]
    matchers: list[Matcher] = []
    position = 0
    while position < len(body.rstrip()):
        found = _MATCHER.match(body, position)
        if not found or found.end() == position:
            raise ValueError(f"bad matcher {body[position:].strip()!r} in {text!r}")
        matchers.append(_build(found.group("name"), found.group("op"), found.group("value")))
        position = found.end()
    if not matchers:
        raise ValueError(f"no matcher in {text!r}")
    return matchers


def parse_all(texts: Iterable[str]) -> list[Matcher]:
    """Parse a config list of matcher strings into one conjunction."""
    return [m for text in texts for m in parse(text)]


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def _build(name: str, op: str, raw: str) -> Matcher:
    value = _unquote(raw.strip())
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(value)
        except re.error as e:
            raise ValueError(f"bad regular expression {value!r} for {name}: {e}") from e
        return Matcher(name, op, value, pattern)  # type: ignore[arg-type]
    return Matcher(name, op, value)  # type: ignore[arg-type]


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), raw[1:-1])
    return raw
