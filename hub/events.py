"""The normalized event every decoder produces, whatever the sender's format."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

import msgspec

Status = Literal["firing", "resolved", "acknowledged"]
Severity = Literal["critical", "error", "warning", "info"]

SEVERITIES: tuple[Severity, ...] = ("critical", "error", "warning", "info")


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One status message about one alert, as a decoder understood it.

    ``fingerprint`` is the alert's identity (see ``hub.fingerprints``);
    ``occurred_at`` is the sender's time, which orders its alert's events, or None
    when the sender gave none or its platform applies events as they arrive (ingest
    then uses the receive time). ``starts_at`` is when the sender says the problem
    began, where that is no ordering time (PagerDuty's ``payload.timestamp``, which
    a re-trigger repeats after a resolve): a firing event that starts its alert
    firing takes it as the alert's ``fired_at`` when it is not before the alert's
    last change. ``ends_at`` is when a firing alert ends
    unless the sender says so again (Prometheus' ``endsAt``; ``hub.expiry``
    resolves it then); None: it fires until a resolved event comes. On a resolved
    event only ``hub.expiry`` sets it: the end that passed (``alerts.refires``).

    ``opens`` False: the event is only about an alert the sender opened before
    (PagerDuty's acknowledge and resolve), so for an unknown fingerprint it is
    ignored. ``details`` False: the sender said only the status (PagerDuty without
    a payload), so summary, severity, labels and annotations are not the sender's
    and the alert keeps its own. ``labels`` apply only to a new alert: its incident,
    receivers and silences were chosen by them, so a later event never changes them.
    Empty ``annotations`` keep the alert's (its runbook stays in the resolved
    message). ``rated`` False: the sender gave no severity, so ``severity`` is the
    format's default, which a resolve does not impose on its alert (an ``error``
    alert resolves as ``error``). ``summarized`` False: the sender gave no summary (a
    native resolve by ``dedup_key``), so ``summary`` is a placeholder and the alert
    keeps its own. ``ignored`` True: the sender's mapping ignores the
    event (a ``generic`` status word mapped to ``ignore``), so it changes nothing and
    is answered and counted as ignored; its status and summary only describe it.
    """

    fingerprint: str
    status: Status
    summary: str
    summarized: bool = True
    severity: Severity = "warning"
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    occurred_at: datetime | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    opens: bool = True
    details: bool = True
    rated: bool = True
    ignored: bool = False


def label_set(labels: Mapping[str, str]) -> dict[str, str]:
    """``labels`` without those whose value is empty. In Prometheus and Alertmanager an
    empty value is no label (``{env=""}`` and ``{}`` are one series): kept, it would
    give a sender that sometimes sends ``env=""`` two identities for one alert, and two
    pages. Matchers read a missing label as "", so they see no difference."""
    return {name: value for name, value in labels.items() if value}


def in_utc(moment: datetime) -> datetime | None:
    """``moment`` in UTC, or None when its offset carries it outside the years 1 to
    9999, which a datetime cannot hold (``0001-01-01T00:00:00+01:00``)."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None
