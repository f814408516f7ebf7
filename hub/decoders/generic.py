"""Any JSON, mapped to Events by the source's ``[sources.mapping]`` table.

For senders that will never speak an alerting format (shops, payment platforms,
CRMs, scripts): dotted paths say where each field is (``data.object.id``,
``items.0.name``), value maps translate their words (``payment_intent.payment_failed``
-> ``firing``). A configured path that is missing is a 422 naming the path, except
labels, annotations, severity and occurred_at, which are optional by nature.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from hub.decoders.common import (
    Decoded,
    as_text,
    decode_batch,
    make_event,
    normalize_severity,
    parse_json,
    parse_time,
)
from hub.errors import ConfigError, InvalidPayload
from hub.events import Event, Severity

if TYPE_CHECKING:
    from datetime import datetime

    from hub.config import FieldMapping, MappedStatus, Source

_STATUSES = ("firing", "resolved", "acknowledged")
IGNORE = "ignore"  # a status_map value or defaults.status: the event is dropped
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|([{}])")
"""In a summary template: a literal ``{{`` or ``}}``, a ``{path}`` placeholder, or a
stray brace (refused at load, so ``{name is {status}`` never reaches a summary)."""
PLACEHOLDER_HINT = (
    "a placeholder is a dotted path into the payload in braces, such as {data.object.id};"
    " write {{ and }} for literal braces"
)
_VALID_PATH = re.compile(r"[^.{}]+(?:\.[^.{}]+)*")


def decode(body: bytes, source: Source) -> Decoded:
    """One event per body; one per element when the body is a list, or of the list
    at ``mapping.events`` (paths are then relative to each element)."""
    mapping = source.mapping
    if mapping is None:
        raise ConfigError([f"source {source.name}: the generic format needs a mapping"])
    data = parse_json(body, Any)
    path = _field(mapping.events) if mapping.events else "$"
    if mapping.events:
        data = lookup(data, mapping.events)
        if not isinstance(data, list):
            raise InvalidPayload(f"expected a list at {mapping.events}", field=path)
    if not isinstance(data, list):
        return Decoded([to_event(data, mapping, source)])
    return decode_batch(data, path, lambda item: to_event(item, mapping, source))


def to_event(data: Any, mapping: FieldMapping, source: Source) -> Event:
    """The event of one item; without a severity word it is not rated, so a resolve
    keeps its alert's severity rather than taking ``defaults.severity``."""
    status_word = _word(data, mapping.status) if mapping.status else None
    status = _status(status_word, mapping)
    if status == IGNORE:
        return _ignored(data, status_word, mapping, source)
    severity_word = _word(data, mapping.severity) if mapping.severity else None
    return make_event(
        source,
        status=status,
        summary=_summary(data, mapping.summary),
        severity=_severity(severity_word, mapping),
        rated=severity_word is not None,
        labels=_table(data, mapping.labels),
        annotations=_table(data, mapping.annotations),
        dedup_key=_required(data, mapping.dedup_key) if mapping.dedup_key else None,
        occurred_at=_occurred_at(data, mapping.occurred_at),
    )


def lookup(data: Any, path: str) -> Any:
    """Follow a dotted path through objects and lists; None when any step is missing."""
    for step in path.split("."):
        if isinstance(data, dict):
            data = data.get(step)
        elif isinstance(data, list) and step.isascii() and step.isdigit() and int(step) < len(data):
            data = data[int(step)]
        else:
            return None
    return data


def problems(source: Source, where: str) -> list[str]:
    """Config faults of a source's ``mapping`` table, each naming the key."""
    mapping = source.mapping
    if source.format != "generic":
        return [f"{where}.mapping: only the generic format reads a mapping"] if mapping else []
    if mapping is None:
        return [f"{where}.mapping: the generic format needs a [sources.mapping] table"]
    where = f"{where}.mapping"
    found = [
        f"{where}.{key}: {fault}"
        for key, path in _paths(mapping)
        for fault in (_template_faults(path) if key == "summary" else _path_faults(path))
    ]
    for table, path_key in (("status_map", "status"), ("severity_map", "severity")):
        if getattr(mapping, table) and not getattr(mapping, path_key):
            found.append(f"{where}.{table}: needs {path_key}, the path of the value to map")
    if mapping.defaults.status == IGNORE and not mapping.status:
        found.append(f"{where}.defaults.status: without a status path every event is ignored")
    return found


def _paths(mapping: FieldMapping) -> list[tuple[str, str]]:
    """Every configured path, with the key that names it; summary always counts."""
    keys = ("status", "severity", "dedup_key", "occurred_at", "events")
    found = [("summary", mapping.summary)]
    found += [(key, getattr(mapping, key)) for key in keys if getattr(mapping, key)]
    found += [(f"labels.{name}", path) for name, path in mapping.labels.items()]
    return found + [(f"annotations.{name}", path) for name, path in mapping.annotations.items()]


def _path_faults(path: str) -> list[str]:
    return [] if _VALID_PATH.fullmatch(path) else [f"invalid path {path!r}"]


def _template_faults(template: str) -> list[str]:
    """What is wrong with a summary: a path, or a template of ``{path}`` placeholders."""
    if "{" not in template:
        return _path_faults(template)
    found = []
    for token in _TOKEN.finditer(template):
        path, stray = token.groups()
        if stray:
            where = f"at character {token.start() + 1} of {template!r}"
            found.append(f"unbalanced {stray!r} {where}: {PLACEHOLDER_HINT}")
        elif path is not None and not _VALID_PATH.fullmatch(path):
            found.append(f"invalid path {path!r} in placeholder {{{path}}}: {PLACEHOLDER_HINT}")
    return found


def _required(data: Any, path: str) -> str:
    value = lookup(data, path)
    if value is None or value == "":
        raise InvalidPayload(f"missing required field {path}", field=_field(path))
    return as_text(value)


def _summary(data: Any, template: str) -> str:
    """A path, or a template whose ``{path}`` placeholders are all required."""
    if "{" not in template:
        return _required(data, template)
    return _TOKEN.sub(lambda token: _filled(data, token), template)


def _filled(data: Any, token: re.Match[str]) -> str:
    """A placeholder's value, or the one brace a ``{{`` or ``}}`` stands for."""
    path = token.group(1)
    return token.group(0)[0] if path is None else _required(data, path)


def _ignored(data: Any, word: str | None, mapping: FieldMapping, source: Source) -> Event:
    """An item whose status word the mapping ignores (a refund, GitHub's ``ping``):
    answered and counted as ignored, so none of its other fields is required. Its
    summary says why, for test mode; its identity is the one the item would have."""
    said = "is missing" if word is None else f"is {word!r}"
    key = _word(data, mapping.dedup_key) if mapping.dedup_key else None
    return make_event(
        source,
        status="firing",
        summary=f"ignored: {mapping.status} {said}",
        labels=_table(data, mapping.labels),
        dedup_key=key,
        ignored=True,
    )


def _status(word: str | None, mapping: FieldMapping) -> MappedStatus:
    """The mapped word, else a word that already is a status, else ``defaults.status``."""
    if not mapping.status:
        return mapping.defaults.status or "firing"
    if word in mapping.status_map:
        return mapping.status_map[word]
    if word in _STATUSES:
        return word  # type: ignore[return-value]
    if mapping.defaults.status:
        return mapping.defaults.status
    problem = "is missing" if word is None else f"has the unmapped value {word!r}"
    raise InvalidPayload(
        f"{mapping.status} {problem} (map it in status_map or set defaults.status;"
        ' "ignore" drops such events)',
        field=_field(mapping.status),
    )


def _severity(word: str | None, mapping: FieldMapping) -> Severity:
    """The mapped word, else a known severity word, else ``defaults.severity``."""
    if word in mapping.severity_map:
        return mapping.severity_map[word]
    return normalize_severity(word, mapping.defaults.severity)


def _word(data: Any, path: str) -> str | None:
    value = lookup(data, path)
    return None if value is None else as_text(value)


def _table(data: Any, paths: dict[str, str]) -> dict[str, str]:
    values = {name: lookup(data, path) for name, path in paths.items()}
    return {name: as_text(value) for name, value in values.items() if value is not None}


def _occurred_at(data: Any, path: str) -> datetime | None:
    value = lookup(data, path) if path else None
    return None if value is None else parse_time(value, _field(path))


def _field(path: str) -> str:
    return f"$.{path}"
