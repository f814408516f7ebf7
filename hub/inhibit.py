"""Inhibition: while a source alert fires, matching target alerts with the same values
for the ``equal`` labels are muted (a datacenter down mutes every host alert in it).

Semantics are Alertmanager's: only firing alerts inhibit; a label missing on both sides
counts as equal; and an alert that matches both sides of a rule is not inhibited by
alerts that also match both sides (so it never inhibits itself). Whether a source is
silenced does not matter, as in Alertmanager: a silenced outage still explains its
consequences.

Cost: building an ``Inhibitor`` evaluates each rule's matchers once per firing alert,
O(rules x firing); asking about one alert is O(rules) dictionary lookups, independent
of how many alerts fire. Build one per dispatch run from the current firing set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from hub.matchers import Matcher, matches_all, parse_all

if TYPE_CHECKING:
    from hub.config import InhibitRule

Labels = Mapping[str, str]
SourceFilter = list["SourceProbe"]
"""Per rule, what a firing alert must have to be its source."""

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Rule:
    """A compiled ``[[inhibit_rules]]`` entry."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    @classmethod
    def from_config(cls, rule: InhibitRule) -> Rule:
        return cls(
            tuple(parse_all(rule.source_matchers)),
            tuple(parse_all(rule.target_matchers)),
            tuple(rule.equal),
        )

    def key(self, labels: Labels) -> tuple[str, ...]:
        return tuple(labels.get(name, "") for name in self.equal)


class Inhibitor:
    """The firing sources of every rule, indexed by their ``equal`` label values."""

    def __init__(self, rules: Sequence[Rule], firing: Iterable[Labels]) -> None:
        self._rules = rules
        # Per rule: keys of all sources, and keys of sources not matching the target side.
        self._any: list[set[tuple[str, ...]]] = [set() for _ in rules]
        self._one_sided: list[set[tuple[str, ...]]] = [set() for _ in rules]
        for labels in firing:
            self._add(labels)

    def _add(self, labels: Labels) -> None:
        for i, rule in enumerate(self._rules):
            if matches_all(rule.source, labels):
                self._any[i].add(rule.key(labels))
                if not matches_all(rule.target, labels):
                    self._one_sided[i].add(rule.key(labels))

    def inhibited_by(self, labels: Labels) -> int | None:
        """The index of the first rule muting these labels, or None."""
        for i, rule in enumerate(self._rules):
            if not matches_all(rule.target, labels):
                continue
            sources = self._one_sided[i] if matches_all(rule.source, labels) else self._any[i]
            if rule.key(labels) in sources:
                return i
        return None


def inhibited_by(rules: Sequence[Rule], target: Labels, firing: Iterable[Labels]) -> int | None:
    """One-off question; to ask about many alerts, build an ``Inhibitor`` once."""
    return Inhibitor(rules, firing).inhibited_by(target)


class SourceProbe(NamedTuple):
    """What one rule's sources must have, for the store to find them without reading
    every firing alert: its ``pairs`` (``name="value"``), or without any, the values of
    a label its ``regex`` matches."""

    pairs: tuple[tuple[str, str], ...]
    regex: Matcher | None = None

    @property
    def name(self) -> str:
        """The label the store finds the rule's sources by (``Tx.index_source_labels``)."""
        return self.pairs[0][0] if self.pairs else self.regex.name


def source_filter(rules: Sequence[Rule]) -> SourceFilter | None:
    """What a firing alert must have to be any rule's source, in a form the store checks
    before reading it (``Tx.firing_alert_labels``): per rule, the ``name="value"``
    matchers of its source side, of a plain name and a value that is not empty (an
    empty one matches a missing label too), or without any, its first ``name=~"re"`` of
    a plain name whose expression does not match the empty value. None when a rule has
    neither: any firing alert may be its source. Reading every firing alert took
    0.5-0.6 s a dispatcher round at 200,000 of them; the ``Inhibitor`` still checks
    every matcher of what is read."""
    wanted = []
    for rule in rules:
        plain = [m for m in rule.source if _PLAIN_NAME.fullmatch(m.name)]
        pairs = tuple((m.name, m.value) for m in plain if m.op == "=" and m.value)
        regex = next((m for m in plain if m.op == "=~" and not m.pattern.fullmatch("")), None)
        if not pairs and regex is None:
            return None
        wanted.append(SourceProbe(pairs, None if pairs else regex))
    return wanted


def source_names(rules: Sequence[Rule]) -> set[str]:
    """The labels the store indexes firing alerts by (``Tx.index_source_labels``): one
    a rule (``SourceProbe.name``), as one index finds a rule's sources and each index
    costs every write that starts or ends an alert's firing."""
    return {probe.name for probe in source_filter(rules) or ()}
