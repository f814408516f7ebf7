"""The commands that talk to a running hub over its HTTP API, in the manner of ``amtool``.

Each command turns parsed arguments and a ``Client`` into an ``Answer``: the API's
data, which ``--output json`` prints as is for scripts, and the text a person reads.
``register`` adds the commands and their options to the ``hub`` parser; ``run`` maps
an API or connection failure to one line on stderr and exit code 1 (argparse
already exits 2 on bad usage).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from hub import display
from hub.client import Client, ClientError
from hub.durations import Duration
from hub.events import in_utc
from hub.matchers import Matcher

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 10.0

ALERT_COLUMNS = (
    ("id", "id"),
    ("status", "status"),
    ("severity", "severity"),
    ("since", "last_change"),
    ("incident", "incident_id"),
    ("muted by", "muted_by"),
    ("summary", "summary"),
    ("labels", "labels"),
)
INCIDENT_COLUMNS = (
    ("id", "id"),
    ("status", "status"),
    ("severity", "severity"),
    ("opened", "opened_at"),
    ("updated", "updated_at"),
    ("title", "title"),
)
ACK_COLUMNS = (
    ("acknowledged by", "acknowledged_by"),
    ("via", "acknowledged_via"),
    ("ack lapses", "snoozed_until"),
)
"""Who holds an acknowledgement, the token that spoke for them (``speaks_for_others``),
and when it lapses (a snooze's end, an ``ack_timeout``)."""
INCIDENT_FIELDS = (
    ("incident", "id"),
    ("status", "status"),
    ("severity", "severity"),
    ("title", "title"),
    ("labels", "labels"),
    ("receivers", "receivers"),
    ("opened", "opened_at"),
    ("acknowledged", "acknowledged_at"),
    *ACK_COLUMNS,
    ("lapses because", "snooze_reason"),
    ("resolved", "resolved_at"),
    ("resolved by", "resolved_by"),
    ("via", "resolved_via"),
)
TIMELINE_COLUMNS = (("at", "at"), ("kind", "kind"), ("actor", "actor"), ("detail", "detail"))
SILENCE_COLUMNS = (
    ("id", "id"),
    ("state", "state"),
    ("matchers", "matchers"),
    ("ends", "ends_at"),
    ("created by", "created_by"),
    ("via", "created_via"),
    ("comment", "comment"),
)
HEARTBEAT_COLUMNS = (
    ("name", "name"),
    ("state", "state"),
    ("last ping", "last_ping"),
    ("due by", "deadline"),
    ("period", "period"),
    ("grace", "grace"),
    ("paused by", "paused_by"),
    ("why", "pause_reason"),
)
ONCALL_COLUMNS = (
    ("schedule", "schedule"),
    ("at", "at"),
    ("person", "person"),
    ("until", "until"),
    ("next", "next"),
)
NOTIFICATION_COLUMNS = (
    ("id", "id"),
    ("incident", "incident_id"),
    ("receiver", "receiver"),
    ("integration", "integration"),
    ("kind", "kind"),
    ("state", "state"),
    ("attempts", "attempts"),
    ("created", "created_at"),
    ("last error", "last_error"),
)


@dataclass(frozen=True)
class Answer:
    """What a command shows: ``data`` for ``--output json``, ``text`` for people, and
    ``errors``, the parts of it that failed (one line each on stderr, exit code 1)."""

    data: Any
    text: str
    errors: tuple[str, ...] = ()


Command = Callable[[argparse.Namespace, Client], Answer]


def alerts(args: argparse.Namespace, client: Client) -> Answer:
    query = [
        ("status", args.status),
        ("severity", args.severity),
        ("source", args.source),
        ("muted", args.muted),
    ]
    rows = _list(args, client, "/api/v1/alerts", query + _labels(args.matchers))
    return Answer(rows, _alert_table(rows))


def _alert_table(rows: list[dict]) -> str:
    """Alerts as a table, each with what holds it back now (``muted_by``)."""
    shown = [{**row, "muted_by": _muted_by(row["mutes"])} for row in rows]
    return display.table(shown, ALERT_COLUMNS)


def _muted_by(mutes: list[dict]) -> str:
    """The API's ``mutes`` of an alert in a few words, as amtool shows an alert
    silenced or inhibited: ``silence <id>`` (the id ``hub silence expire`` takes), a
    window or rule by the name the config gives it (``maintenance:nightly``,
    ``mute_time_intervals:nights``, ``inhibit_rules[0]``), ``flapping``."""
    return ", ".join(
        f"silence {by}" if mute["reason"] == "silence" else by
        for mute in mutes
        for by in mute["by"] or [mute["reason"]]
    )


def incidents(args: argparse.Namespace, client: Client) -> Answer:
    query = [("status", args.status), ("severity", args.severity), ("muted", args.muted)]
    rows = _list(args, client, "/api/v1/incidents", query + _labels(args.matchers))
    return Answer(rows, display.table(rows, _incident_columns(args.status)))


def _incident_columns(status: str | None) -> display.Columns:
    """With ``ACK_COLUMNS`` before the title, unless the list holds only incidents no one
    holds an acknowledgement of (open or resolved ones)."""
    if status in ("open", "resolved"):
        return INCIDENT_COLUMNS
    *first, title = INCIDENT_COLUMNS
    return (*first, *ACK_COLUMNS, title)


def incident(args: argparse.Namespace, client: Client) -> Answer:
    found = client.get(f"/api/v1/incidents/{args.id}")
    sections = [
        display.fields(found, INCIDENT_FIELDS),
        "Alerts:\n" + _alert_table(found["alerts"]),
        "Timeline:\n" + display.table(found["timeline"], TIMELINE_COLUMNS),
    ]
    return Answer(found, "\n\n".join(sections))


def act(action: str, args: argparse.Namespace, client: Client) -> Answer:
    """ack, unack and resolve: the hub records the token's name (or ``--by``) as who, the
    comment as why."""
    found = client.post(f"/api/v1/incidents/{args.id}/{action}", _said(args) or None)
    by = (_by(found, "resolved") or _by(found, "acknowledged")) if found["status"] != "open" else ""
    return Answer(found, f"incident {found['id']} is {found['status']}{by}")


def snooze(args: argparse.Namespace, client: Client) -> Answer:
    """Acknowledge for a while: the hub pages again when the snooze ends."""
    body = {"duration": args.duration, **_said(args)}
    found = client.post(f"/api/v1/incidents/{args.id}/snooze", body)
    until = display.cell(found["snoozed_until"])
    return Answer(
        found, f"incident {found['id']} is snoozed{_by(found, 'acknowledged')} until {until}"
    )


def _by(found: dict, side: str) -> str:
    """Who acknowledged or resolved (``side``) the incident, and the token that spoke
    for them, as the console says it (" by alice via chatbot"); empty if nobody did."""
    who, via = found.get(f"{side}_by"), found.get(f"{side}_via")
    if not who:
        return ""
    return f" by {who} via {via}" if via else f" by {who}"


def _said(args: argparse.Namespace, keys: tuple[str, ...] = ("comment", "by")) -> dict[str, str]:
    """An action's body: why (``--comment``, a pause's ``--reason``) and who (``--by``),
    each only if given."""
    return {key: getattr(args, key) for key in keys if getattr(args, key)}


def silence_add(args: argparse.Namespace, client: Client) -> Answer:
    """Prints only the new silence's id, as ``amtool silence add`` does, for scripts.
    ``--start`` makes it pending until then (a maintenance ahead of time); ``--duration``
    counts from the start, as there."""
    body = {"matchers": _alertname_first(args.matchers), "comment": args.comment}
    if args.start:
        body["starts_at"] = args.start
    if args.end:
        body["ends_at"] = args.end
    else:
        body["duration"] = args.duration or "1h"
    if args.author:
        body["created_by"] = args.author
    created = client.post("/api/v1/silences", body)
    return Answer(created, created["id"])


def silence_update(args: argparse.Namespace, client: Client) -> Answer:
    """Change what is given and keep the rest: the silence is read and sent back whole
    (the API takes a whole silence), as ``amtool silence update`` does; ``--duration``
    counts from the silence's start, as there. Prints the id, which stays."""
    path = f"/api/v1/silences/{_segment(args.id)}"
    found = client.get(path)
    body = {
        "matchers": args.matchers or found["matchers"],
        "comment": args.comment or found["comment"],
        "starts_at": found["starts_at"],
    }
    if args.duration:
        body["duration"] = args.duration
    else:
        body["ends_at"] = args.end or found["ends_at"]
    updated = client.put(path, body)
    return Answer(updated, updated["id"])


def silence_list(args: argparse.Namespace, client: Client) -> Answer:
    """As ``amtool silence query``: the silences having each matcher given among theirs
    (the API's ``matcher`` filter), and with ``--quiet`` only their ids, one a line, for
    ``hub silence expire $(hub silence list -q ...)``."""
    query = [("state", args.state), *(("matcher", m) for m in _alertname_first(args.matchers))]
    rows = client.get("/api/v1/silences", query)
    if args.quiet:
        return Answer(rows, "\n".join(row["id"] for row in rows))
    return Answer(rows, display.table(rows, SILENCE_COLUMNS))


def _alertname_first(given: list[str]) -> list[str]:
    """amtool's shortcut, in every command taking matchers as amtool's ``alert query``,
    ``silence add`` and ``silence query`` do: a first argument with no operator in it is
    the alert's name (``hub silence add DiskFull`` is ``alertname="DiskFull"``)."""
    if given and not any(op in given[0] for op in "=~"):
        return [str(Matcher("alertname", "=", given[0])), *given[1:]]
    return given


def silence_expire(args: argparse.Namespace, client: Client) -> Answer:
    """End each silence given, as ``amtool silence expire ID ...`` does: one ``silence
    ID is expired`` line each. One id answers as ever (``-o json``: the silence); with
    several, a failure names its id and the others are still expired (``-o json``: the
    list of those expired)."""
    if len(args.ids) == 1:
        expired = _expire(client, args.ids[0])
        return Answer(expired, _expired_line(expired))
    done, failed = [], []
    for silence_id in args.ids:
        try:
            done.append(_expire(client, silence_id))
        except ClientError as e:
            failed.append(f"silence {silence_id}: {e}")
    return Answer(done, "\n".join(map(_expired_line, done)), tuple(failed))


def _expire(client: Client, silence_id: str) -> dict:
    return client.delete(f"/api/v1/silences/{_segment(silence_id)}")


def _expired_line(silence: dict) -> str:
    return f"silence {silence['id']} is {silence['state']}"


def oncall(args: argparse.Namespace, client: Client) -> Answer:
    """``{schedule, at, person, until, next}`` from the schedules endpoint."""
    found = client.get(f"/api/v1/schedules/{_segment(args.name)}/oncall", [("at", args.at)])
    return Answer(found, display.table([found], ONCALL_COLUMNS))


def notifications(args: argparse.Namespace, client: Client) -> Answer:
    query = [("incident", args.incident), ("state", args.state), ("receiver", args.receiver)]
    rows = _list(args, client, "/api/v1/notifications", query)
    return Answer(rows, display.table(rows, NOTIFICATION_COLUMNS))


def retry(args: argparse.Namespace, client: Client) -> Answer:
    found = client.post(f"/api/v1/notifications/{args.id}/retry")
    return Answer(found, f"notification {found['id']} is {found['state']} again")


def dismiss(args: argparse.Namespace, client: Client) -> Answer:
    found = client.post(f"/api/v1/notifications/{args.id}/dismiss", _said(args) or None)
    return Answer(found, f"notification {found['id']} is {found['state']}")


def heartbeat_list(args: argparse.Namespace, client: Client) -> Answer:
    """Every heartbeat, config and API ones, with its state and its next deadline: what
    to look at before pausing one, and after."""
    rows = client.get("/api/v1/heartbeats")
    return Answer(rows, display.table(rows, HEARTBEAT_COLUMNS))


def heartbeat_pause(args: argparse.Namespace, client: Client) -> Answer:
    """Stop watching a heartbeat until a ping or a resume; the token's name (or ``--by``)
    is recorded as who, ``--reason`` as why."""
    body = _said(args, ("reason", "by")) or None
    found = client.post(f"/api/v1/heartbeats/{_segment(args.name)}/pause", body)
    return Answer(found, f"heartbeat {found['name']} is {found['state']}{_by(found, 'paused')}")


def heartbeat_resume(args: argparse.Namespace, client: Client) -> Answer:
    """Watch a paused heartbeat again: says its state and its next deadline."""
    body = _said(args, ("by",)) or None
    found = client.post(f"/api/v1/heartbeats/{_segment(args.name)}/resume", body)
    due = display.cell(found["deadline"])
    return Answer(found, f"heartbeat {found['name']} is {found['state']}, due by {due}")


def _labels(matchers: list[str]) -> list[tuple[str, object]]:
    return [("label", matcher) for matcher in _alertname_first(matchers)]


def _list(
    args: argparse.Namespace, client: Client, path: str, query: list[tuple[str, object]]
) -> list[Any]:
    """The newest ``--limit`` rows of a list, or with ``--all`` every row, page by page."""
    query = [*query, ("limit", args.limit)]
    return client.get_all(path, query) if args.all else client.get(path, query)


def _segment(text: str) -> str:
    """A name or id as one path segment, whatever characters it holds."""
    return urllib.parse.quote(text, safe="")


def run(command: Command, args: argparse.Namespace) -> int:
    """One API command: its answer on stdout, or one line on stderr and exit code 1."""
    try:
        answer = command(args, Client(args.url, args.token, args.timeout))
    except ClientError as e:
        print(f"hub: error: {e}", file=sys.stderr)
        return 1
    shown = display.as_json(answer.data) if args.output == "json" else answer.text
    try:
        if shown:  # nothing to list (``-q``, every expire failed) prints no empty line
            print(shown, flush=True)
    except BrokenPipeError:
        # The reader (``| head``, a closed pager) took what it wanted: not an error. Later
        # writes, Python's own flush at exit included, go nowhere instead of failing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    for error in answer.errors:
        print(f"hub: error: {error}", file=sys.stderr)
    return 1 if answer.errors else 0


def base_url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"expected a URL like {DEFAULT_URL}, got {text!r}")
    return text.rstrip("/")


def moment(text: str) -> str:
    """An RFC 3339 time with an offset, sent on as UTC: a time without one is ambiguous.
    One whose offset carries it outside the years 1 to 9999 in UTC is refused here,
    as a usage error, rather than failing to convert."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"expected an RFC 3339 time with an offset, like 2026-01-05T09:00:00Z, got {text!r}"
        )
    utc = in_utc(parsed)
    if utc is None:
        raise argparse.ArgumentTypeError(f"{text!r} is outside the years 1 to 9999 in UTC")
    return utc.isoformat().replace("+00:00", "Z")


def duration(text: str) -> str:
    try:
        Duration.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e
    return text


def connection_defaults(environ: Mapping[str, str]) -> dict[str, object]:
    return {
        "url": environ.get("HUB_URL") or DEFAULT_URL,
        "token": environ.get("HUB_TOKEN"),
        "output": "table",
        "timeout": DEFAULT_TIMEOUT,
    }


def add_connection_options(parser: argparse.ArgumentParser, defaults: Mapping[str, object]):
    """The options every API command takes, before or after the command's name.

    Only the root parser holds defaults; each command's copy defaults to SUPPRESS, so
    its default cannot overwrite a value given before the command (``hub --url X alerts``).
    """
    group = parser.add_argument_group("talking to the hub (API commands)")

    def given(name: str) -> object:
        return defaults.get(name, argparse.SUPPRESS)

    group.add_argument(
        "--url", type=base_url, default=given("url"), help=f"default: $HUB_URL or {DEFAULT_URL}"
    )
    group.add_argument("--token", default=given("token"), help="API token; default: $HUB_TOKEN")
    group.add_argument(
        "-o", "--output", choices=("table", "json"), default=given("output"), help="default: table"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=given("timeout"),
        help=f"seconds to wait for the hub; default: {DEFAULT_TIMEOUT:g}",
    )


def register(commands: argparse._SubParsersAction) -> None:
    """Add the API commands to the ``hub`` parser."""
    shared = argparse.ArgumentParser(add_help=False)
    add_connection_options(shared, {})
    add = partial(_add, shared=shared)
    listed = add(commands, "alerts", "list alerts", alerts)
    _listing(listed, ("firing", "resolved"))
    listed.add_argument("--source", help="only alerts from this source")
    listed = add(commands, "incidents", "list incidents", incidents)
    _listing(listed, ("open", "acknowledged", "resolved"))
    add(commands, "incident", "one incident: its alerts and timeline", incident).add_argument(
        "id", type=int
    )
    for action, summary in (
        ("ack", "acknowledge"),
        ("unack", "unacknowledge"),
        ("resolve", "resolve"),
    ):
        acting = add(commands, action, f"{summary} an incident", partial(act, action))
        acting.add_argument("id", type=int)
        _said_options(acting, "why; recorded on the timeline")
    snoozing = add(commands, "snooze", "acknowledge an incident for a while", snooze)
    snoozing.add_argument("id", type=int)
    snoozing.add_argument("duration", type=duration, help='how long, 1m to 7d (e.g. "4h")')
    _said_options(snoozing, "why; recorded on the timeline")
    _silences(commands.add_parser("silence", help="add, update, list or expire silences"), add)
    _notifications(commands, add)
    at = add(commands, "oncall", "who is on call for a schedule", oncall)
    at.add_argument("name", help="schedule name")
    at.add_argument("--at", type=moment, help="RFC 3339 time (default: now)")
    _heartbeats(commands.add_parser("heartbeat", help="list, pause or resume heartbeats"), add)


def _add(
    commands: argparse._SubParsersAction,
    name: str,
    summary: str,
    command: Command,
    *,
    shared: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=summary, description=summary, parents=[shared])
    sub.set_defaults(func=partial(run, command))
    return sub


def _listing(parser: argparse.ArgumentParser, statuses: tuple[str, ...]) -> None:
    parser.add_argument("--status", choices=statuses)
    parser.add_argument("--severity", help="critical, error, warning or info")
    muting = parser.add_mutually_exclusive_group()
    for flag, value, words in (
        ("--muted", "true", "only what a mute holds back now (the console's muted ones)"),
        ("--not-muted", "false", "leave out what a mute holds back now"),
    ):
        muting.add_argument(flag, dest="muted", action="store_const", const=value, help=words)
    _paged(parser)
    parser.add_argument(
        "matchers",
        nargs="*",
        help='label matchers, e.g. service="checkout" (a first one without an operator is the'
        " alertname, as in amtool)",
    )


def _said_options(parser: argparse.ArgumentParser, why: str) -> None:
    """``--comment`` and ``--by`` of an action on an incident or a dead letter."""
    parser.add_argument("--comment", default="", help=why)
    _by_option(parser)


def _by_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--by",
        help="who acts: the token's name (recorded anyway), or with a token that speaks for"
        " others the person it acts for",
    )


def _paged(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit",
        type=int,
        default=100,
        help="at most this many, newest first (1-1000); with --all, this many a request",
    )
    parser.add_argument(
        "--all", action="store_true", help="every row: ask for page after page until the last"
    )


def _silences(parser: argparse.ArgumentParser, add: Callable[..., argparse.ArgumentParser]):
    actions = parser.add_subparsers(dest="silence_command", required=True)
    new = add(actions, "add", "silence the alerts the matchers select", silence_add)
    new.add_argument(
        "matchers",
        nargs="+",
        help='e.g. service="checkout" env=~"prod|staging" (a first one without an operator is'
        " the alertname, as in amtool)",
    )
    new.add_argument("--start", type=moment, help="RFC 3339 time it starts at (default: now)")
    lasting = new.add_mutually_exclusive_group()
    lasting.add_argument(
        "-d", "--duration", type=duration, help="how long from its start (default: 1h)"
    )
    lasting.add_argument("--end", type=moment, help="RFC 3339 time it ends at")
    new.add_argument("-c", "--comment", required=True, help="why the alerts are silenced")
    new.add_argument(
        "-a",
        "--author",
        help="the token's name (recorded anyway), or with a token that speaks for others the"
        " person it acts for",
    )
    changing = add(actions, "update", "change a silence, keeping its id", silence_update)
    changing.add_argument("id")
    changing.add_argument(
        "matchers", nargs="*", help="the new matchers, all of them (default: unchanged)"
    )
    ending = changing.add_mutually_exclusive_group()
    ending.add_argument("-d", "--duration", type=duration, help="how long from the silence's start")
    ending.add_argument("--end", type=moment, help="RFC 3339 time it ends at")
    changing.add_argument(
        "-c", "--comment", help="why the alerts are silenced (default: unchanged)"
    )
    states = add(actions, "list", "list silences, the config's static ones included", silence_list)
    states.add_argument("--state", choices=("active", "pending", "expired"))
    states.add_argument("-q", "--quiet", action="store_true", help="print only the ids, one a line")
    states.add_argument(
        "matchers",
        nargs="*",
        help="only silences having each of these matchers (a first one without an operator"
        ' is the alertname, as in amtool), e.g. alertname="DiskFull"',
    )
    expiring = add(actions, "expire", "end silences now", silence_expire)
    expiring.add_argument("ids", nargs="+", metavar="ID")


def _heartbeats(parser: argparse.ArgumentParser, add: Callable[..., argparse.ArgumentParser]):
    actions = parser.add_subparsers(dest="heartbeat_command", required=True)
    add(actions, "list", "every heartbeat, its state and next deadline", heartbeat_list)
    pausing = add(
        actions, "pause", "stop watching a heartbeat until a ping or a resume", heartbeat_pause
    )
    pausing.add_argument("name")
    pausing.add_argument("--reason", help="why: a job decommissioned, a host in maintenance")
    resuming = add(actions, "resume", "watch a paused heartbeat again, from now", heartbeat_resume)
    resuming.add_argument("name")
    _by_option(pausing)
    _by_option(resuming)


def _notifications(commands: argparse._SubParsersAction, add: Callable[..., Any]) -> None:
    log = add(commands, "notifications", "the delivery log", notifications)
    log.add_argument("--incident", type=int, help="only this incident's notifications")
    log.add_argument("--state", choices=("pending", "sending", "sent", "dead", "dismissed"))
    log.add_argument("--receiver", help="only this receiver's notifications")
    _paged(log)
    add(commands, "retry", "send a dead-lettered notification again", retry).add_argument(
        "id", type=int
    )
    aside = add(commands, "dismiss", "set a dead letter aside: nobody needs it sent", dismiss)
    aside.add_argument("id", type=int)
    _said_options(aside, "why, for the incident's timeline")
