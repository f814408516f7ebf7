"""hub's alerts and silences in the shapes of the Alertmanager API v2 (as Alertmanager
0.25's OpenAPI document defines them), and Alertmanager's filters over them: pure
functions, so that ``hub.api_alertmanager`` only reads the store and answers.

Where hub holds less than Alertmanager, the answer says so plainly rather than
inventing: an alert or a static silence without an end shows ``FOREVER``; an alert is
``suppressed`` by any of hub's mutes (silences and maintenance windows in
``silencedBy``, the inhibit rule in ``inhibitedBy`` as ``inhibit_rules[N]``, since hub
remembers the rule rather than the inhibiting alert; flapping and muting time
intervals in neither); there are no ``unprocessed`` alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

from hub import matchers
from hub.alerts import matchable
from hub.fingerprints import alertmanager_fingerprint
from hub.silences import Silence, State
from hub.silences import state as silence_state

Time = Annotated[datetime, msgspec.Meta(tz=True)]
FOREVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
"""The end shown for what never ends (Alertmanager's times are never null)."""
GENERATOR_ANNOTATION = "generator_url"
"""Where hub keeps a Prometheus or Alertmanager alert's ``generatorURL``."""
EQUAL_OPERATORS = ("=", "=~")


class AmMatcher(msgspec.Struct, rename="camel", kw_only=True):
    """One label matcher of a silence; ``isEqual`` false negates it (``!=``, ``!~``)."""

    name: str
    value: str
    is_regex: bool
    is_equal: bool = True


class AmSilenceStatus(msgspec.Struct):
    state: State


class AmSilence(msgspec.Struct, rename="camel", kw_only=True):
    """Alertmanager's ``gettableSilence``."""

    id: str
    status: AmSilenceStatus
    updated_at: Annotated[Time, msgspec.Meta(description="last change, else creation")]
    matchers: list[AmMatcher]
    starts_at: Time
    ends_at: Time
    created_by: Annotated[
        str, msgspec.Meta(description="who made it: the token's name, or the person it named")
    ]
    comment: str


class AmPostableSilence(msgspec.Struct, rename="camel", kw_only=True):
    """Alertmanager's ``postableSilence``: with an ``id``, a change of that silence."""

    id: Annotated[str | None, msgspec.Meta(description="the silence to change")] = None
    matchers: Annotated[list[AmMatcher], msgspec.Meta(min_length=1)]
    starts_at: Time
    ends_at: Time
    created_by: Annotated[
        str,
        msgspec.Meta(
            description="the token's name, or with a token that speaks for others the person"
            " it acts for (see README)"
        ),
    ]
    comment: str


class AmSilenceCreated(msgspec.Struct):
    silenceID: str  # Alertmanager spells it so


class AmReceiver(msgspec.Struct):
    name: str


class AmAlertStatus(msgspec.Struct, rename="camel", kw_only=True):
    state: Literal["unprocessed", "active", "suppressed"]
    silenced_by: list[str]
    inhibited_by: Annotated[
        list[str], msgspec.Meta(description="the inhibit rules muting it: inhibit_rules[N]")
    ]


class AmAlert(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    """Alertmanager's ``gettableAlert``; ``labels`` are those hub matches on."""

    labels: dict[str, str]
    annotations: dict[str, str]
    receivers: list[AmReceiver]
    fingerprint: str
    starts_at: Time
    updated_at: Time
    ends_at: Time
    status: AmAlertStatus
    generator_url: str = msgspec.field(default="", name="generatorURL")


class AmAlertGroup(msgspec.Struct):
    """Alertmanager's ``alertGroup``: an incident's firing alerts as one receiver of
    it is told them, under the incident's group labels."""

    labels: dict[str, str]
    receiver: AmReceiver
    alerts: list[AmAlert]


class AmPeer(msgspec.Struct):
    name: str
    address: str


class AmCluster(msgspec.Struct):
    name: str
    status: Literal["ready", "settling", "disabled"]
    peers: list[AmPeer]


class AmVersion(msgspec.Struct, rename="camel", kw_only=True):
    version: str
    revision: str
    branch: str
    build_user: str
    build_date: str
    go_version: str


class AmConfig(msgspec.Struct):
    original: str


class AmStatus(msgspec.Struct, rename="camel", kw_only=True):
    """Alertmanager's ``alertmanagerStatus``: what amtool and Grafana check."""

    cluster: AmCluster
    version_info: AmVersion
    config: AmConfig
    uptime: Annotated[Time, msgspec.Meta(description="when hub started")]


def am_matchers(texts: Iterable[str]) -> list[AmMatcher]:
    """hub's matcher strings (a set ``{a="b",c="d"}`` counts as its members) in
    Alertmanager's shape."""
    return [
        AmMatcher(
            name=m.name,
            value=m.value,
            is_regex=m.op in matchers.REGEX_OPERATORS,
            is_equal=m.op in EQUAL_OPERATORS,
        )
        for m in matchers.parse_all(texts)
    ]


def hub_matcher(given: AmMatcher) -> str:
    """An Alertmanager matcher as hub writes it; its regular expression is checked with
    the silence's other matchers, within their budget (``silences.problems``)."""
    op = {(True, False): "=~", (True, True): "!~", (False, False): "=", (False, True): "!="}[
        (given.is_regex, not given.is_equal)
    ]
    return matchers.written(given.name, op, given.value)  # type: ignore[arg-type]


def am_silence(silence: Silence, now: datetime) -> AmSilence:
    """A silence in Alertmanager's shape; a static one without bounds starts when hub
    loaded it and ends ``FOREVER``."""
    return AmSilence(
        id=silence.id,
        status=AmSilenceStatus(silence_state(silence, now)),
        updated_at=silence.updated_at or silence.created_at,
        matchers=am_matchers(silence.matchers),
        starts_at=silence.starts_at or silence.created_at,
        ends_at=silence.ends_at or FOREVER,
        created_by=silence.created_by,
        comment=silence.comment,
    )


_STATE_ORDER = {"active": 0, "pending": 1, "expired": 2}


def silence_order(shown: AmSilence) -> tuple[int, float]:
    """Alertmanager's order of a silence list: active ones ending soonest first, then
    pending ones starting soonest, then expired ones, the last ended first."""
    state = shown.status.state
    if state == "active":
        return 0, shown.ends_at.timestamp()
    if state == "pending":
        return 1, shown.starts_at.timestamp()
    return 2, -shown.ends_at.timestamp()


def silence_matches(silence: Silence, wanted: list[matchers.Matcher]) -> bool:
    """Alertmanager's silence ``filter``: its matchers read as labels (name -> value or
    pattern), which the filter must match."""
    labels = {m.name: m.value for m in matchers.parse_all(silence.matchers)}
    return matchers.matches_all(wanted, labels)


def am_alert(alert: Mapping[str, Any], silence_ids: set[str]) -> AmAlert:
    """A firing alert (a store row with its ``mutes`` and ``incident_receivers``) in
    Alertmanager's shape; ``silence_ids`` tells the silences among its mutes from the
    muting time intervals."""
    labels = matchable(dict(alert))
    annotations = {"summary": alert["summary"], **alert["annotations"]}
    generator_url = annotations.pop(GENERATOR_ANNOTATION, "")
    return AmAlert(
        labels=labels,
        annotations=annotations,
        receivers=[AmReceiver(name) for name in alert["incident_receivers"] or []],
        fingerprint=am_fingerprint(alert, labels),
        starts_at=_time(alert["fired_at"] or alert["first_seen"]),
        updated_at=_time(alert["last_seen"]),
        ends_at=_time(alert["ends_at"]) if alert["ends_at"] else FOREVER,
        status=_status(alert["mutes"], silence_ids),
        generator_url=generator_url,
    )


def am_fingerprint(alert: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    """The sender's Alertmanager fingerprint where hub keeps it (Alertmanager,
    Prometheus and Grafana sources); else Alertmanager's of the labels shown."""
    own = alertmanager_fingerprint(alert["labels"])
    return own if alert["fingerprint"] == own else alertmanager_fingerprint(labels)


def _status(mutes: list[dict[str, Any]], silence_ids: set[str]) -> AmAlertStatus:
    holders = [held for mute in mutes for held in mute["by"]]
    inhibited = [held for mute in mutes if mute["reason"] == "inhibition" for held in mute["by"]]
    return AmAlertStatus(
        state="suppressed" if mutes else "active",
        silenced_by=[held for held in holders if held in silence_ids],
        inhibited_by=inhibited,
    )


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class AlertFilter:
    """The query of ``GET /api/v2/alerts``: which states to show (hub has no
    unprocessed alerts, so that flag keeps nothing out), the label matchers all of
    which must match, and a regex one of the alert's receivers must fully match.

    ``active`` holds every alert neither silenced nor inhibited, the ones a muting
    time interval or flapping suppresses included: Alertmanager 0.25 marks those
    active, so ``amtool alert query`` lists them and ``--silenced``, ``--inhibited``
    and ``--unprocessed`` do not."""

    active: bool = True
    silenced: bool = True
    inhibited: bool = True
    labels: list[matchers.Matcher] = field(default_factory=list)
    receiver: matchers.Regex | None = None

    def keeps(self, shown: AmAlert) -> bool:
        status = shown.status
        if not (status.silenced_by or status.inhibited_by or self.active):
            return False
        if status.silenced_by and not self.silenced:
            return False
        if status.inhibited_by and not self.inhibited:
            return False
        if not matchers.matches_all(self.labels, shown.labels):
            return False
        return self.receiver is None or any(
            self.receiver.fullmatch(r.name) for r in shown.receivers
        )


def am_groups(
    rows: Iterable[Mapping[str, Any]],
    silence_ids: set[str],
    wanted: AlertFilter,
    receiver: matchers.Regex | None,
) -> list[AmAlertGroup]:
    """The firing alerts ``wanted`` keeps, in groups: one per incident and receiver of
    it that ``receiver`` fully matches, as Alertmanager has an aggregation group per
    route's receiver and group labels (the incident's, without the names an alert
    lacks). An alert whose incident is gone is in no group. Sorted as Alertmanager
    sorts them: by labels, then receiver; alerts by fingerprint."""
    kept = [(am_alert(row, silence_ids), row) for row in rows]
    groups: dict[tuple[int, str], AmAlertGroup] = {}
    for shown, row in sorted(kept, key=lambda pair: pair[0].fingerprint):
        if not wanted.keeps(shown):
            continue
        for name in row["incident_receivers"] or []:
            if receiver is not None and not receiver.fullmatch(name):
                continue
            key = (row["incident_id"], name)
            if key not in groups:
                labels = {k: v for k, v in (row["incident_labels"] or {}).items() if v}
                groups[key] = AmAlertGroup(labels, AmReceiver(name), [])
            groups[key].alerts.append(shown)
    return sorted(groups.values(), key=lambda g: (sorted(g.labels.items()), g.receiver.name))
