"""Label matchers in Alertmanager's syntax: ``name="v"``, ``name!="v"``, ``name=~"re"``,
``name!~"re"``, alone or as a set ``{a="b", c=~"d|e"}``. A label name with characters
other than letters, digits, ``_`` and ``:`` (``my-label``, ``app.kubernetes.io/name``) is
quoted, as Alertmanager 0.27 and later accept: ``"my-label"="x"``.

Semantics follow Alertmanager, so rules copied from an existing setup mean the same here:
a missing label has the value ""; regular expressions are fully anchored (``=~"api"`` does
not match "api-v2"; ``=~"api|web"`` anchors the whole alternation); values may be quoted,
with ``\\"``, ``\\\\`` and ``\\n`` as escapes and any other backslash kept literally (so
``=~"\\d+"`` is the regex ``\\d+``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Operator = Literal["=", "!=", "=~", "!~"]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# Both match a token with its outer whitespace stripped, and neither has a lazy group
# followed by optional whitespace: such a pattern backtracks over every run of spaces
# at every position, quadratic in the length, and a silence or a ``label=`` filter of
# some tens of kilobytes held the event loop for seconds.
_MATCHER = re.compile(rf'({_NAME.pattern}|"(?:[^"\\]|\\.)*")\s*(=~|=|!=|!~)\s*(.*)', re.DOTALL)
_UNQUOTED = re.compile(r'([^"=!~\s][^"=!~]*)(=~|=|!=|!~)(.*)', re.DOTALL)
"""A matcher whose bare name has characters a bare name may not: it needs quotes."""
_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Matcher:
    """One label condition; ``pattern`` is compiled here for the regex operators."""

    name: str
    op: Operator
    value: str
    pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False, init=False)

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "pattern", compile_pattern(self.value))

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.pattern is None:
            return (actual == self.value) == (self.op == "=")
        return (self.pattern.fullmatch(actual) is not None) == (self.op == "=~")

    def __str__(self) -> str:
        name = self.name if _NAME.fullmatch(self.name) else _quoted(self.name)
        return f"{name}{self.op}{_quoted(self.value)}"


def compile_pattern(text: str) -> re.Pattern[str]:
    """``text`` as a regular expression, or ValueError saying why not. Python's ``re``
    refuses a repeat count over 2**32 with OverflowError and parentheses nested a few
    thousand deep with RecursionError rather than ``re.error``: those are bad
    expressions too, not a failure of the hub."""
    try:
        return re.compile(text)
    except (re.error, OverflowError) as e:
        raise ValueError(f"bad regular expression {text!r}: {e}") from e
    except RecursionError as e:
        raise ValueError(f"bad regular expression {text[:40]!r}...: nested too deeply") from e


def parse(text: str) -> list[Matcher]:
    """Parse one matcher or a comma-separated set, with or without braces.

    Raises ValueError with a message that quotes the offending text.
    """
    body = text.strip()
    if body.startswith("{"):
        if not body.endswith("}"):
            raise ValueError(f"unclosed '{{' in matcher {text!r}")
        body = body[1:-1]
    matchers = [_parse_one(token) for token in _split(body)]
    if not matchers:
        raise ValueError(f"no matcher in {text!r}")
    return matchers


def parse_all(texts: Iterable[str]) -> list[Matcher]:
    """Parse a config list of matcher strings into one conjunction."""
    return [m for text in texts for m in parse(text)]


def problems(texts: Sequence[str], key: str, required: bool = False) -> list[str]:
    """Every unparseable entry of a config list, as ``key[i]: reason``; with ``required``
    an empty list is a problem too."""
    found = [f"{key}: at least one matcher is needed"] if required and not texts else []
    for i, text in enumerate(texts):
        try:
            parse(text)
        except ValueError as e:
            found.append(f"{key}[{i}]: {e}")
    return found


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def _split(body: str) -> list[str]:
    """Split on commas outside double quotes; a trailing comma is allowed."""
    tokens: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in body:
        if char == "," and not quoted:
            tokens.append("".join(current))
            current = []
            continue
        if char == '"' and not escaped:
            quoted = not quoted
        escaped = char == "\\" and not escaped
        current.append(char)
    last = "".join(current)
    return [*tokens, last] if last.strip() else tokens


def _parse_one(token: str) -> Matcher:
    token = token.strip()
    found = _MATCHER.fullmatch(token)
    if not found:
        raise ValueError(f"bad matcher {token!r}: {_expected(token)}")
    raw_name, op, raw = found.groups()
    name = _unquote(raw_name)
    if not name:
        raise ValueError(f"bad matcher {token.strip()!r}: the label name is empty")
    return Matcher(name, op, _unquote(raw))  # type: ignore[arg-type]


def _expected(token: str) -> str:
    """What a matcher that does not parse lacks; for a bare name with other characters
    (``my-label="x"``), the quoted form that parses."""
    loose = _UNQUOTED.fullmatch(token)
    if loose is None:
        return "expected name, operator, value"
    name, op, raw = (part.strip() for part in loose.groups())
    value = raw if raw.startswith('"') else _quoted(raw)
    return (
        "quote a label name with characters other than letters, digits and _: "
        f"{_quoted(name)}{op}{value}"
    )


def _quoted(text: str) -> str:
    """``text`` in double quotes with the escapes ``_unquote`` undoes."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _unquote(raw: str) -> str:
    """Undo OpenMetrics escapes; an unescaped quote may only close a quoted value."""
    quoted = raw.startswith('"')
    if quoted and (len(raw) < 2 or not raw.endswith('"') or _escaped_at_end(raw)):
        raise ValueError(f"unterminated quoted value {raw!r}")
    inner = raw[1:-1] if quoted else raw
    if re.search(r'(?<!\\)(?:\\\\)*"', inner):
        raise ValueError(f"unescaped double quote in value {raw!r}")
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), inner, flags=re.S)


def _escaped_at_end(raw: str) -> bool:
    """True when the closing quote is itself escaped (an odd run of backslashes)."""
    trailing = len(raw) - 1 - len(raw[:-1].rstrip("\\"))
    return trailing % 2 == 1
