"""Alert identity: the sender's key within its source where it has one, else a
stable hash of labels.

A sender's key names a thing in the sender's own namespace (PagerDuty scopes
``dedup_key`` per routing key; a GitHub run id and a Shopify order id are
unrelated), so it identifies an alert only together with the source:
``<source>/<key>``. Source names have no ``/`` (they are one path segment of
``/webhooks/{name}``) and the hashes are hex, so a scoped key never equals another
source's key, a label hash, or an Alertmanager fingerprint.

Alertmanager's own fingerprint is reproduced exactly and is not scoped, so that an
alert keeps the same identity whether it arrives from Prometheus, from
Alertmanager's webhook, or from two servers of an HA pair posting to two sources.
A source's ``labels`` are part of it, as Prometheus' ``external_labels`` are part
of the labels Alertmanager fingerprints (``hub.decoders.common.labelled_event``).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from hub.events import label_set

if TYPE_CHECKING:
    from hub.store import Tx

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK64 = (1 << 64) - 1
_SEPARATOR = 0xFF
_SCOPE = "/"
_REKEYED = "labelled_sources_rekeyed"  # the setting that says the upgrade's rekey ran
_EMPTIES_DROPPED = "empty_labels_rekeyed"  # the same for alerts hashed with an empty label


def alertmanager_fingerprint(labels: Mapping[str, str]) -> str:
    """FNV-1a 64 over (name, 0xff, value, 0xff) sorted by name, as 16 hex digits.

    Cached: Prometheus re-sends the same label sets every minute, and the byte loop
    is the costliest step of decoding a re-send.
    """
    return _fnv_of(tuple(sorted(labels.items())))


@functools.lru_cache(maxsize=65_536)
def _fnv_of(pairs: tuple[tuple[str, str], ...]) -> str:
    digest = _FNV_OFFSET
    for name, value in pairs:
        for part in (name.encode(), value.encode()):
            for byte in part:
                digest = ((digest ^ byte) * _FNV_PRIME) & _MASK64
            digest = ((digest ^ _SEPARATOR) * _FNV_PRIME) & _MASK64
    return f"{digest:016x}"


def label_fingerprint(
    source: str, labels: Mapping[str, str], identity_labels: Iterable[str] | None = None
) -> str:
    """A stable hash of the source name and the identity labels (default: all)."""
    names = sorted(labels if identity_labels is None else set(identity_labels) & set(labels))
    hasher = hashlib.sha256(source.encode())
    for name in names:
        hasher.update(b"\xff" + name.encode() + b"\xff" + labels[name].encode())
    return hasher.hexdigest()[:16]


def fingerprint(
    source: str,
    dedup_key: str | None,
    labels: Mapping[str, str],
    identity_labels: Iterable[str] | None = None,
) -> str:
    """The sender's dedup key scoped by its source when given, else the label hash
    of this source."""
    if dedup_key:
        return f"{source}{_SCOPE}{dedup_key}"
    return label_fingerprint(source, labels, identity_labels)


def sender_key(scoped: str) -> str:
    """The sender's own dedup key of a scoped fingerprint, for answers it reads."""
    return scoped.partition(_SCOPE)[2]


def rekey_labelled(tx: Tx, sources: Iterable[str]) -> int:
    """Once, at the first start of a hub that counts a source's labels in its alerts'
    identity: the alerts ``sources`` (those with labels, of Alertmanager's formats)
    stored before take the identity their next events have, Alertmanager's fingerprint
    of their stored labels, which hold the source's. Else a firing alert would miss its
    re-sends and resolve and fire for ever beside its new twin. An alert whose new
    identity another already holds keeps its own. Returns how many moved."""
    return _rekey_once(
        tx, _REKEYED, sources, lambda _source, _old, labels: alertmanager_fingerprint(labels)
    )


def rekey_empty_labelled(tx: Tx, identity_labels: Mapping[str, list[str] | None]) -> int:
    """Once, at the first start of a hub that drops labels with an empty value: the
    alerts of these sources (name -> ``identity_labels``) whose label hash counted one
    (``env=""``) take the hash their next events have, so a firing one still takes its
    resolve. Alerts named by a key keep theirs. Returns how many moved."""

    def dropped(source: str, old: str, labels: dict[str, str]) -> str | None:
        names = identity_labels[source]
        if all(labels.values()) or old != label_fingerprint(source, labels, names):
            return None
        return label_fingerprint(source, label_set(labels), names)

    return _rekey_once(tx, _EMPTIES_DROPPED, identity_labels, dropped)


def _rekey_once(
    tx: Tx, setting: str, sources: Iterable[str], identity: Callable[[str, str, dict], str | None]
) -> int:
    """Give each alert of ``sources`` the ``identity`` (source, fingerprint, stored
    labels) says it has now (None: as it is), unless ``setting`` says this ran; an
    alert whose new identity another already holds keeps its own."""
    if tx.get_setting(setting):
        return 0
    moved = 0
    for source in sources:
        for alert_id, old, labels in tx.source_alert_labels(source):
            new = identity(source, old, labels)
            if new is not None and new != old and tx.rekey_alert(alert_id, new):
                moved += 1
    tx.put_setting(setting, "1")
    return moved
