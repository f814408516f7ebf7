"""Label matchers in Alertmanager's syntax: ``name="v"``, ``name!="v"``, ``name=~"re"``,
``name!~"re"``, alone or as a set ``{a="b", c=~"d|e"}``. A label name with characters
other than letters, digits, ``_`` and ``:`` (``my-label``, ``app.kubernetes.io/name``) is
quoted, as Alertmanager 0.27 and later accept: ``"my-label"="x"``.

Semantics follow Alertmanager, so rules copied from an existing setup mean the same here:
a missing label has the value ""; regular expressions are fully anchored (``=~"api"`` does
not match "api-v2"; ``=~"api|web"`` anchors the whole alternation); values may be quoted,
with ``\\"``, ``\\\\`` and ``\\n`` as escapes and any other backslash kept literally (so
``=~"\\d+"`` is the regex ``\\d+``).

Regular expressions are RE2's, as Alertmanager's are Go's: matching takes time linear in
the label value however the expression is written. Python's backtracking ``re`` took 40
seconds on ``(a+)+$`` against thirty "a" and a "!" (twice as long for each "a" more),
blocking the event loop meanwhile. RE2 refuses what only a backtracking engine can do
(lookaround, backreferences), and its ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII, as Go's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import re2

Operator = Literal["=", "!=", "=~", "!~"]
REGEX_OPERATORS = ("=~", "!~")

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_MATCHER = re.compile(rf'({_NAME.pattern}|"(?:[^"\\]|\\.)*")\s*(=~|=|!=|!~)\s*(.*)', re.DOTALL)
"""One matcher, stripped of the blanks around it first: with ``\\s*`` at both ends, a
lazy value backtracked over a run of blanks at each of its characters (seconds for a
``filter=`` holding 20,000 spaces)."""
_UNQUOTED = re.compile(r'([^"=!~\s][^"=!~]*)(=~|=|!=|!~)(.*)', re.DOTALL)
"""A matcher whose bare name has characters a bare name may not: it needs quotes."""
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused expression is the caller's ValueError, not a log line
_OPTIONS.max_mem = 8 << 20  # RE2's default: a compiled expression over it is refused
_OPTIONS.never_capture = True  # a match is a yes or no: groups only slowed it down
MAX_REPEATS = 1000
"""What the repetitions of one expression may add up to. RE2 caps each count at 1000,
but merges adjacent repeats of one character (``x{2,1000}x{2,1000}...``,
``x?x?x?...``) and takes time quadratic in the merged count to compile them: seconds
for a 200-character expression."""
_REPEAT = re.compile(r"\\.|\{0*([0-9]{1,4})(?:,0*([0-9]{0,4}))?\}|([*+?])", re.DOTALL)
"""A repetition, counted by its larger bound; ``*``, ``+`` and ``?`` count one, an
escaped character (``\\*``) nothing. Those in a class (``[*]``) count too: an
overestimate only."""
MAX_LIST_COST = 250_000
"""What compiling the regular expressions of one list of matchers (a route's, a
silence's, one request's ``filter``) may cost together, in RE2 instructions (a quarter
of a second or so to build): else one request of 3,000 filters ``x=~"a.{0,1000}"``, 6 ms
each to compile, kept the event loop busy for 18 seconds."""
_UNICODE_CLASS = re.compile(r"\\[pP]")
UNICODE_CLASS_COST = 1000
"""What a Unicode class (``\\pL``, ``\\P{Han}``) costs before compiling: RE2 takes half a
millisecond to parse ``\\pL`` into some 1,200 instructions, even in an expression it
then refuses."""
_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Matcher:
    """One label condition; ``pattern`` is compiled here for the regex operators."""

    name: str
    op: Operator
    value: str
    pattern: Regex | None = field(default=None, compare=False, repr=False, init=False)

    def __post_init__(self) -> None:
        if self.op in REGEX_OPERATORS:
            object.__setattr__(self, "pattern", compile_pattern(self.value))

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.pattern is None:
            return (actual == self.value) == (self.op == "=")
        return self.pattern.fullmatch(actual) == (self.op == "=~")

    def __str__(self) -> str:
        return written(self.name, self.op, self.value)


def written(name: str, op: Operator, value: str) -> str:
    """A matcher as text ``parse`` reads back, its value not yet compiled or checked."""
    shown = name if _NAME.fullmatch(name) else _quoted(name)
    return f"{shown}{op}{_quoted(value)}"


class TooCostly(ValueError):
    """A regular expression, or a list's together, over what compiling one may cost."""


@dataclass(frozen=True)
class Regex:
    """A compiled RE2 expression, matched whole against a label value or a name."""

    compiled: re2._Regexp

    @property
    def cost(self) -> int:
        return self.compiled.programsize

    def fullmatch(self, text: str) -> bool:
        """Whether all of ``text`` matches. It goes in as UTF-8 bytes: the ``re2`` module's
        own handling of a str refuses a lone surrogate, which Python's ``re`` matched,
        and maps byte offsets back to characters, which a yes or no does not need."""
        return self.compiled.fullmatch(text.encode("utf-8", "surrogatepass")) is not None


def compile_pattern(text: str) -> Regex:
    """``text`` as an RE2 regular expression, or ValueError saying why not: RE2 refuses
    Python-only syntax (``(?=...)``, ``(?<=...)``, ``\\1``, ``\\Z``) and, as TooCostly, a
    program over ``max_mem``; hub refuses repetitions adding up to over ``MAX_REPEATS``."""
    repeats = sum(_repeats(found) for found in _REPEAT.finditer(text))
    if repeats > MAX_REPEATS:
        raise ValueError(
            f"bad regular expression {_shown(text)}: its repetitions add up to {repeats}, more"
            f" than {MAX_REPEATS} (each {{n,m}} counts m, each *, + and ? counts 1)"
        )
    try:
        return Regex(re2.compile(text.encode("utf-8", "surrogatepass"), _OPTIONS))
    except re2.error as e:
        reason = e.args[0].decode("utf-8", "replace") if e.args else "refused"
        if reason.startswith("pattern too large"):
            raise TooCostly(f"bad regular expression {_shown(text)}: {reason}") from e
        raise ValueError(
            f"bad regular expression {_shown(text)}: {reason} (RE2 syntax, as Alertmanager's"
            " Go regexp: no lookaround or backreferences)"
        ) from e


QUOTED_MAX = 200
"""How much of a refused text an error quotes: enough to find it, while a 1 MiB matcher
is not echoed back whole in the answer and the log."""


def _shown(text: str) -> str:
    """``text`` quoted for an error message, cut after ``QUOTED_MAX`` characters."""
    if len(text) <= QUOTED_MAX:
        return repr(text)
    return f"{text[:QUOTED_MAX]!r}... ({len(text)} characters)"


def _repeats(found: re.Match[str]) -> int:
    """How many times one ``_REPEAT`` match repeats: 0 for an escaped character."""
    count, upper, bare = found.groups()
    return int(upper or count) if count else 1 if bare else 0


class _Budget:
    """What is left of ``MAX_LIST_COST`` while one list of matchers is parsed."""

    def __init__(self) -> None:
        self.left = MAX_LIST_COST

    def spend(self, cost: int) -> None:
        self.left -= cost
        if self.left < 0:
            raise TooCostly(
                "the regular expressions of these matchers are too large together:"
                f" over {MAX_LIST_COST} RE2 instructions"
            )


def parse(text: str, budget: _Budget | None = None) -> list[Matcher]:
    """Parse one matcher or a comma-separated set, with or without braces; ``budget``
    is shared with the other entries of a list.

    Raises ValueError with a message that quotes the offending text.
    """
    body = text.strip()
    if body.startswith("{"):
        if not body.endswith("}"):
            raise ValueError(f"unclosed '{{' in matcher {_shown(text)}")
        body = body[1:-1]
    spending = budget or _Budget()
    matchers = [_parse_one(token, spending) for token in _split(body)]
    if not matchers:
        raise ValueError(f"no matcher in {_shown(text)}")
    return matchers


def parse_all(texts: Iterable[str]) -> list[Matcher]:
    """Parse a config list of matcher strings into one conjunction."""
    budget = _Budget()
    return [m for text in texts for m in parse(text, budget)]


def problems(texts: Sequence[str], key: str, required: bool = False) -> list[str]:
    """Every unparseable entry of a config list, as ``key[i]: reason``; with ``required``
    an empty list is a problem too. It stops at the first entry over the list's budget:
    each further one would be compiled for nothing."""
    found = [f"{key}: at least one matcher is needed"] if required and not texts else []
    budget = _Budget()
    for i, text in enumerate(texts):
        try:
            parse(text, budget)
        except TooCostly as e:
            return [*found, f"{key}[{i}]: {e}"]
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


def _parse_one(token: str, budget: _Budget) -> Matcher:
    """One matcher, its regular expression paid for from ``budget``: its Unicode classes
    before compiling, its program after."""
    token = token.strip()
    found = _MATCHER.fullmatch(token)
    if not found:
        raise ValueError(f"bad matcher {_shown(token)}: {_expected(token)}")
    raw_name, op, raw = found.groups()
    name = _unquote(raw_name)
    if not name:
        raise ValueError(f"bad matcher {_shown(token)}: the label name is empty")
    value = _unquote(raw)
    if op in REGEX_OPERATORS:
        budget.spend(UNICODE_CLASS_COST * len(_UNICODE_CLASS.findall(value)))
    matcher = Matcher(name, op, value)  # type: ignore[arg-type]
    budget.spend(matcher.pattern.cost if matcher.pattern else 0)
    return matcher


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
        raise ValueError(f"unterminated quoted value {_shown(raw)}")
    inner = raw[1:-1] if quoted else raw
    if re.search(r'(?<!\\)(?:\\\\)*"', inner):
        raise ValueError(f"unescaped double quote in value {_shown(raw)}")
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), inner, flags=re.S)


def _escaped_at_end(raw: str) -> bool:
    """True when the closing quote is itself escaped (an odd run of backslashes)."""
    trailing = len(raw) - 1 - len(raw[:-1].rstrip("\\"))
    return trailing % 2 == 1
