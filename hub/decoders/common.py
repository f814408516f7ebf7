"""What every decoder shares: JSON parsing with clear errors, building an Event,
severity words, times, and batches that keep their valid items."""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec

from hub.config import choices
from hub.errors import InvalidPayload, MalformedBody
from hub.events import Event, Severity, label_set
from hub.fingerprints import alertmanager_fingerprint, fingerprint

if TYPE_CHECKING:
    from hub.config import Source

T = TypeVar("T")
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]

_PATH = re.compile(r" - at `(\$[^`]*)`$")
_NAMED_FIELD = re.compile(r"Object (?:missing required|contains unknown) field `([^`]+)`")
_STEP = re.compile(r"\.([^.\[]+)|\[[^\]]*\]")  # .name, or [3] / [...] (an item)
_ANY_KEY = "[...]"  # msgspec's step to a map's value, whichever key it had
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAIVE_TIME = "Expected `datetime` with a timezone component"
_EPOCH_MS_THRESHOLD = 1e11  # epoch seconds reach this in the year 5138; larger means ms

_SEVERITY_WORDS: dict[str, Severity] = {
    **dict.fromkeys(
        ("critical", "crit", "fatal", "emergency", "emerg", "alert", "page", "high"), "critical"
    ),
    **dict.fromkeys(("p1", "sev1", "disaster"), "critical"),
    **dict.fromkeys(("error", "err", "major", "p2", "sev2"), "error"),
    **dict.fromkeys(("warning", "warn", "minor", "medium", "average", "p3", "sev3"), "warning"),
    **dict.fromkeys(("info", "information", "informational", "notice", "low", "debug"), "info"),
    **dict.fromkeys(("p4", "p5", "sev4", "sev5"), "info"),
}


class Decoded(msgspec.Struct):
    """What a decoder made of one body: the events, and the items it had to reject.

    A batch format (Alertmanager, Prometheus) keeps the valid items of a batch and
    lists the invalid ones, each as "<path>: <reason>", as Alertmanager does; it
    raises InvalidPayload only when nothing in the body is usable.
    """

    events: list[Event]
    rejected: list[str] = []


def parse_json(body: bytes | msgspec.Raw, type_: type[T]) -> T:
    """Decode JSON into ``type_``: 400 when it does not parse, 422 naming the field."""
    try:
        return _decoder(type_).decode(body)
    except msgspec.ValidationError as e:
        raise _invalid(str(e), type_, body) from e
    except msgspec.DecodeError as e:
        raise MalformedBody(f"body is not valid JSON: {e}") from e
    except UnicodeDecodeError as e:
        raise MalformedBody(f"body is not valid UTF-8: byte {e.start} of a string") from e
    except RecursionError as e:
        raise MalformedBody("body is not valid JSON: nested too deeply") from e


def parse_shape(body: bytes, type_: type[T], hint: Callable[[Any], str | None]) -> T:
    """``parse_json``, with ``hint``'s word added when the body is of the wrong shape at
    its root: given the body as any JSON, it says which other format the body looks
    like, for a sender that posts to a source of the wrong format."""
    try:
        return parse_json(body, type_)
    except InvalidPayload as e:
        if e.field != "$" or (said := hint(_any_json(body))) is None:
            raise
        raise InvalidPayload(f"{e.detail}; {said}", field=e.field) from e


def _any_json(body: bytes | msgspec.Raw) -> Any:
    """The body as any JSON; None when it is no JSON (msgspec may refuse a body's shape
    before it reads it to the end)."""
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None


def _invalid(message: str, type_: Any, body: bytes | msgspec.Raw) -> InvalidPayload:
    """msgspec's refusal, with ``field`` naming the place: a missing or unknown field
    itself (msgspec points at the object holding it), a value of a map by its key
    (``$.labels.port``, where msgspec says ``$.labels[...]``), a wrong enum value
    followed by the choices, and a time without an offset followed by how to write one."""
    match = _PATH.search(message)
    field, at = (match.group(1), match.group(0)) if match else ("$", "")
    reason = message.removesuffix(at)
    if _ANY_KEY in field:
        keyed = _keyed(field, type_, body)
        field, at = keyed, at.replace(field, keyed)
    if named := _NAMED_FIELD.fullmatch(reason):
        field = f"{field}.{named[1]}"
    elif reason.startswith("Invalid enum value") and (allowed := choices(_type_at(type_, field))):
        reason += f" (one of: {', '.join(allowed)})"
    elif reason == _NAIVE_TIME:
        reason += "; give the time with an offset, e.g. 2026-11-28T12:00:00Z"
    return InvalidPayload(reason + at, field=field)


def _keyed(path: str, type_: Any, body: bytes | msgspec.Raw) -> str:
    """``path`` with each ``[...]`` (msgspec's "a value of this map") replaced by the
    key of the map's first invalid value, found by walking the body along the path;
    the path as it was where the walk finds none. Only refusals pay for the walk."""
    data = _any_json(body)
    walked = "$"
    for match in _STEP.finditer(path.removeprefix("$")):
        name, step = match.group(1), match.group(0)
        type_ = _step(type_, name)
        if step == _ANY_KEY:
            key = _first_invalid(data, type_)
            if key is None:
                return path
            name, step = key, _key_step(key)
        walked += step
        data = _child(data, name, step)
    return walked


def _key_step(key: str) -> str:
    """A step to a map's value: ``.port``, or the key quoted when it is no identifier
    (``["app.kubernetes.io/name"]``)."""
    return f".{key}" if _PLAIN_KEY.fullmatch(key) else f"[{msgspec.json.encode(key).decode()}]"


def _first_invalid(values: Any, type_: Any) -> str | None:
    """The first key of the map ``values`` whose value is not a ``type_``; None when
    there is no such map or type."""
    if not isinstance(values, dict) or type_ is None:
        return None
    for key, value in values.items():
        try:
            msgspec.convert(value, type_)
        except msgspec.ValidationError:
            return key
    return None


def _child(data: Any, name: str | None, step: str) -> Any:
    """One step down the decoded body: a member by name, or a list item by index."""
    if name is not None:
        return data.get(name) if isinstance(data, dict) else None
    index = step.strip("[]")
    return data[int(index)] if isinstance(data, list) and index.isdigit() else None


def _type_at(type_: Any, path: str) -> Any:
    """The type a msgspec path (``$[1].status``) leads to in ``type_``; None where the
    type has no such place."""
    for match in _STEP.finditer(path.removeprefix("$")):
        type_ = _step(type_, match.group(1))
    return type_


def _step(type_: Any, name: str | None) -> Any:
    """One step down: to a struct's field ``name``, or (None) to a list's or dict's item."""
    for arm in _arms(type_):
        if name is None and typing.get_origin(arm) in (list, dict):
            return typing.get_args(arm)[-1]
        if name is not None and isinstance(arm, type) and issubclass(arm, msgspec.Struct):
            for field in msgspec.structs.fields(arm):
                if field.encode_name == name:
                    return field.type
    return None


def _arms(type_: Any) -> list[Any]:
    """The types a value of ``type_`` may be: the members of a union, unannotated."""
    origin = typing.get_origin(type_)
    if origin is Annotated:
        return _arms(typing.get_args(type_)[0])
    if origin in (typing.Union, types.UnionType):
        return [arm for member in typing.get_args(type_) for arm in _arms(member)]
    return [type_]


@functools.cache
def _decoder(type_: Any) -> msgspec.json.Decoder:
    """One decoder per type: building one is several times the cost of decoding a
    typical event, and every request would pay it."""
    return msgspec.json.Decoder(type_)


def make_event(
    source: Source,
    *,
    status: Any,
    summary: str,
    summarized: bool = True,
    severity: Any = "warning",
    rated: bool = True,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    dedup_key: str | None = None,
    shared_fingerprint: str | None = None,
    occurred_at: datetime | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    opens: bool = True,
    details: bool = True,
    ignored: bool = False,
) -> Event:
    """An Event with the source's default labels applied and its fingerprint computed.

    Labels with an empty value are dropped before anything reads them (``label_set``),
    in every format, so ``env=""`` leaves the source's ``env`` in place, as an external
    label fills a label Prometheus dropped.

    ``dedup_key`` identifies the alert within this source; ``shared_fingerprint``
    (Alertmanager's, see ``labelled_event``) is the identity as is, in every source.
    ``rated`` False: ``severity`` is a default, the sender gave none; ``summarized``
    False: ``summary`` is a placeholder, the sender gave none.
    """
    merged = {**source.labels, **label_set(labels or {})}
    identity = shared_fingerprint or fingerprint(
        source.name, dedup_key, merged, source.identity_labels
    )
    return Event(
        fingerprint=identity,
        status=status,
        summary=summary,
        summarized=summarized,
        severity=severity,
        labels=merged,
        annotations=annotations or {},
        occurred_at=occurred_at,
        starts_at=starts_at,
        ends_at=ends_at,
        opens=opens,
        details=details,
        rated=rated,
        ignored=ignored,
    )


def not_after(decoded: Decoded, now: datetime) -> Decoded:
    """``decoded`` without the event times later than ``now``: those events are dated
    as if the sender gave no time, at the receive time, and a start later than ``now``
    is dropped (an alert never fires since a time to come).

    Ordering trusts event times (an event older than its alert's last change is
    stale), so a sender whose clock runs ahead would outrank every event sent after
    it: a firing dated next year would stay firing until next year. None, not ``now``
    (rounded to the microsecond): ingest then takes the exact receive time, so an
    untimed event later in the same delivery has the same time and, later, wins.
    ``ends_at`` stays: a firing alert's end is ahead by design. Nearly every delivery
    has no such event and is returned as it is.
    """
    if not any(_ahead(event, now) for event in decoded.events):
        return decoded
    events = [msgspec.structs.replace(event, **_ahead(event, now)) for event in decoded.events]
    return Decoded(events, decoded.rejected)


def _ahead(event: Event, now: datetime) -> dict[str, None]:
    """The event's times (occurred_at, starts_at) later than ``now``, each as None."""
    times = {"occurred_at": event.occurred_at, "starts_at": event.starts_at}
    return {name: None for name, moment in times.items() if moment is not None and moment > now}


def normalize_severity(word: object, default: Severity = "warning") -> Severity:
    """Map a sender's severity word (``crit``, ``P1``, ``minor``...) to hub's four."""
    if not isinstance(word, str):
        return default
    return _SEVERITY_WORDS.get(word.strip().lower(), default)


def alert_summary(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    """Alertmanager convention: the summary/description/message annotation, else alertname."""
    for key in ("summary", "description", "message"):
        if annotations.get(key):
            return annotations[key]
    if labels.get("alertname"):
        return labels["alertname"]
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def alert_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """An Alertmanager-style alert's labels without empty values (``label_set``), as
    Alertmanager keeps them; refused when none is left: an alert without labels names
    nothing, and every such alert would be one alert titled ``{}``."""
    kept = label_set(labels)
    if not kept:
        raise InvalidPayload("at least one label pair is required", field="$.labels")
    return kept


def labelled_event(
    source: Source,
    *,
    status: Any,
    labels: dict[str, str],
    annotations: dict[str, str],
    fingerprint: str | None,
    occurred_at: datetime | None,
    ends_at: datetime | None = None,
) -> Event:
    """An Event for an Alertmanager-style alert: identity, severity and summary from labels.

    The identity is Alertmanager's fingerprint of the alert's labels with the source's
    added, as Prometheus' ``external_labels`` are added before Alertmanager computes
    it: two clusters' sources (``cluster = "eu-1"``, ``"us-1"``) keep their identical
    alerts (Watchdog) apart. It is not scoped by the source: the two Prometheus
    servers of an HA pair, posting to two sources with the same labels (or none),
    send one alert. The sender's ``fingerprint`` (Alertmanager's, Grafana's) stands
    where the source adds no labels; None: none was given.
    """
    merged = {**source.labels, **labels}
    if fingerprint is None or source.labels:
        fingerprint = alertmanager_fingerprint(merged)
    return make_event(
        source,
        status=status,
        summary=alert_summary(labels, annotations),
        severity=normalize_severity(labels.get("severity")),
        labels=merged,
        annotations=annotations,
        shared_fingerprint=fingerprint,
        occurred_at=occurred_at,
        ends_at=ends_at,
    )


def decode_batch(items: Sequence[T], path: str, build: Callable[[T], Event]) -> Decoded:
    """Build each item on its own: keep the valid ones, list the invalid ones.

    ``build`` raises InvalidPayload with a field relative to the item (``$.labels``);
    the rejection names it from the body's root (``$.alerts[2].labels``).
    """
    if not items:
        raise InvalidPayload("expected at least one item, got none", field=path)
    events, rejected, fields = [], [], []
    for i, item in enumerate(items):
        try:
            events.append(build(item))
        except InvalidPayload as e:
            fields.append(f"{path}[{i}]{e.field.removeprefix('$')}")
            rejected.append(f"{fields[-1]}: {_PATH.sub('', e.detail)}")
    if not events:
        raise InvalidPayload("no valid item: " + "; ".join(rejected[:3]), field=fields[0])
    return Decoded(events, rejected)


def parse_time(value: object, field: str) -> datetime:
    """An ISO 8601 string or epoch seconds (or milliseconds) as an aware UTC datetime."""
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip()):
        value = float(value)
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > _EPOCH_MS_THRESHOLD else value
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip())
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    except (ValueError, OverflowError, OSError) as e:
        raise InvalidPayload(f"{field}: not a valid time: {e}", field=field) from e
    raise InvalidPayload(f"{field}: expected an ISO 8601 time or epoch seconds", field=field)


def as_text(value: object) -> str:
    """A JSON value as label or annotation text: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()
