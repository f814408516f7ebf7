"""The ``hub`` command.

``serve`` runs the hub; ``check-config``, ``route-test``, ``notify-test`` and
``backup`` work from the config file alone, with no server; the rest talk to a running
hub over its HTTP API (``hub.cli_api``).

Only what those API commands need is imported at the top. The others import the
config, the server and Apprise when they run: with all of it loaded, ``hub alerts``
took about 0.9 s to start, against 0.25 s without.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from hub import cli_api, matchers
from hub.errors import ConfigError

if TYPE_CHECKING:
    from hub.config import Config
    from hub.routing import RouteMatch
    from hub.templates import NotificationContext

DEFAULT_CONFIG = "alerts.toml"
CONFIG_HELP = "config file (default: $HUB_CONFIG or ./alerts.toml)"
# Allocations between two collections of young objects (Python's default is 700).
GC_YOUNG_THRESHOLD = 10_000


def config_path(given: str | None) -> str:
    """The config file: the argument, else ``HUB_CONFIG``, else ``./alerts.toml``."""
    return given or os.environ.get("HUB_CONFIG") or DEFAULT_CONFIG


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hub import channels, connections, logs
    from hub import config as config_module
    from hub.app import check_store, create_app
    from hub.store import claim

    logs.configure(args.log_level.upper())
    channels.route_apprise_logs()  # before the config's URLs load: Apprise logs them whole
    try:
        config = config_module.load(config_path(args.config))
    except ConfigError as e:
        _print_problems(config_path(args.config), e.problems)
        return 2
    given = {key: value for key, value in (("host", args.host), ("port", args.port)) if value}
    config = config_module.with_server(config, given)
    server = config.server
    try:
        serving = claim(config.storage.path)  # held until the process exits
    except ConfigError as e:
        _print_problems(config_path(args.config), e.problems)
        return 2
    try:
        listening = _listen(server.host, server.port)
        check_store(config)
    except ConfigError as e:
        serving.give_up()
        _print_problems(config_path(args.config), e.problems)
        return 2
    open_files = connections.raise_open_files_limit()
    app = create_app(config, config_path(args.config), server_given=given)
    metrics = app.hub.metrics
    census = connections.Census(
        connections.max_connections(server.max_connections, open_files),
        metrics.connections_refused.inc,
    )
    metrics.watch_connections(census.open.__len__, census.limit)
    _tune_garbage_collector()
    settings = uvicorn.Config(
        app,
        host=server.host,
        port=server.port,
        log_config=None,
        access_log=False,
        # hub reads no client address and names no server: both would be per-request
        # work (a middleware layer, a header) for nothing.
        proxy_headers=False,
        server_header=False,
        loop="uvloop",
        http=connections.protocol(
            float(server.request_timeout), server.request_timeout.text(), census
        ),
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(settings).run(sockets=[listening])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything starts: a port in use is refused
    as a config problem (exit 2), not after the store was migrated and the runtime
    started and stopped again."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
    except OSError as e:
        listening.close()
        raise ConfigError([f"server: cannot listen on {host}:{port}: {e.strerror}"]) from None
    return listening


def _tune_garbage_collector() -> None:
    """Keep the collector off the hot path. What was built at start-up (modules, the
    app, the config) lives as long as the process: frozen, it is never scanned again.
    A request leaves few cyclic objects behind, so collecting young objects every
    few thousand allocations instead of every 700 loses nothing.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def check_config(args: argparse.Namespace) -> int:
    """Validate the file, and warn when its store could not be at its path on this
    machine (a missing folder): ``hub serve`` refuses to start then. A warning, not a
    problem, as a config is often checked on another machine than the one it runs on."""
    from hub import config as config_module
    from hub import escalation
    from hub.store import path_problems

    path = config_path(args.config or args.path)
    config = _load(path)
    if config is None:
        return 1
    machine = [
        f"{problem} (hub serve refuses it on this machine)"
        for problem in path_problems(config.storage.path)
    ]
    for warning in config_module.warnings(config) + escalation.warnings(config) + machine:
        print(f"warning: {warning}")
    print(f"{path}: ok ({len(config.sources)} sources, {len(config.receivers)} receivers)")
    return 0


def route_test(args: argparse.Namespace) -> int:
    """The receivers a label set reaches, comma-separated as ``amtool config routes test``
    prints them, each once as hub tells it once; ``--verbose`` adds each matched route
    with its group key, timing and the time intervals muting the receiver it brings."""
    from hub import routing

    config = _load(config_path(args.config))
    if config is None:
        return 1
    labels = dict(args.labels)
    found = routing.match(routing.resolve(config.route), labels)
    print(",".join(dict.fromkeys(route.receiver for route in found)))
    if args.verbose:
        for route in found:
            print(_describe_route(route, labels))
    return 0


def _describe_route(route: RouteMatch, labels: dict[str, str]) -> str:
    from hub import routing

    timing = route.timing
    lines = [
        f"route {route.route_id} -> {route.receiver}",
        f"  group key:       {routing.group_key(route, labels)}",
        f"  group_by:        {_grouping(route.group_by)}",
        f"  group_wait:      {_written(timing.group_wait)}",
        f"  group_interval:  {_written(timing.group_interval)}",
        f"  repeat_interval: {_written(timing.repeat_interval)}",
    ]
    if route.escalation:
        lines.append(f"  escalation:      {route.escalation}")
    intervals = {
        "mute_time_intervals": route.mute_time_intervals,
        "active_time_intervals": route.active_time_intervals,
    }
    lines += [f"  {key}: {', '.join(names)}" for key, names in intervals.items() if names]
    return "\n".join(lines)


def _grouping(group_by: tuple[str, ...] | None) -> str:
    if group_by is None:
        return "... (every label)"
    return ", ".join(group_by) or "- (one group for the route)"


def _written(seconds: float) -> str:
    """Seconds as the config file writes them: ``250ms``, ``30s``, ``1h30m``."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    parts, rest = [], round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


TEST_TITLE = "Test notification from hub, please ignore"


def notify_test(args: argparse.Namespace) -> int:
    """Send a test message to every URL of a receiver through the real config and templates,
    and say per URL whether it went out; exit 1 if any did not."""
    from hub import channels
    from hub.outbox import Failure, render_and_send
    from hub.templates import Templates

    path = config_path(args.config)
    config = _load(path)
    if config is None:
        return 1
    receiver = config.receiver(args.receiver)
    if receiver is None:
        known = ", ".join(r.name for r in config.receivers)
        print(
            f"hub: error: no receiver {args.receiver!r} in {path} (known: {known})", file=sys.stderr
        )
        return 2
    channels.route_apprise_logs()
    # Each URL's line carries Apprise's reason; its warnings would repeat it on stderr.
    logging.getLogger("hub.apprise").addHandler(logging.NullHandler())
    templates = Templates(config)
    context = marked_sample(receiver.name, config.server.base_url)
    failed = 0
    for url in receiver.urls:
        result = render_and_send(templates, url, receiver.timeout, context)
        failed += isinstance(result, Failure)
        outcome = "failed" if isinstance(result, Failure) else "sent  "
        detail = result.reason if isinstance(result, Failure) else result.template_error
        shown = channels.redact(url, receiver.timeout)
        print(f"{outcome}  {shown}{f': {detail}' if detail else ''}")
    return 1 if failed else 0


def backup(args: argparse.Namespace) -> int:
    """Write a consistent copy of the config's store to DEST, safe while the hub runs;
    an existing DEST is kept unless ``--force``."""
    import sqlite3

    from hub import store

    config = _load(config_path(args.config))
    if config is None:
        return 1
    dest = _backup_file(args.dest, Path(config.storage.path))
    refusal = _backup_refusal(Path(config.storage.path), dest, args.force)
    if refusal:
        print(f"hub: error: {refusal}", file=sys.stderr)
        return 1
    try:
        size = store.backup(config.storage.path, dest)
    except sqlite3.Error as e:
        print(f"hub: error: cannot back up {config.storage.path} to {dest}: {e}", file=sys.stderr)
        return 1
    print(f"wrote {dest} ({size} bytes): a consistent copy of {config.storage.path}")
    return 0


def _backup_file(given: str, store: Path) -> Path:
    """A folder as DEST takes a copy named after the store and the time, as ``cp`` puts
    a file into a folder: ``hub backup /var/backups/`` is a natural first try. A DEST
    written with a trailing slash is a folder even when it does not exist, so that a
    mistyped one is refused as missing rather than written as a file of that name."""
    dest = Path(given)
    if not (dest.is_dir() or given.endswith(("/", os.sep))):
        return dest
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return dest / f"{store.stem}-{stamp}{store.suffix}"


def _backup_refusal(store: Path, dest: Path, force: bool) -> str | None:
    """Why a backup cannot start, naming the side at fault: SQLite says "unable to open
    database file" for a missing store and a missing destination folder alike."""
    if not store.is_file():
        return (
            f"cannot back up {store}: the store does not exist (has hub run with this config yet?)"
        )
    if not dest.parent.is_dir():
        return f"cannot back up to {dest}: the folder {dest.parent} does not exist"
    if dest.exists() and not force:
        return f"{dest} exists; --force replaces it"
    return None


def marked_sample(receiver: str, base_url: str) -> NotificationContext:
    """The sample incident, marked as a test everywhere a template may show it: incident
    #0, which no real incident is, its links on ``base_url`` as a real notification's
    are, so that a test checks them too, to the console page saying it was a test (a
    real incident's page once the hub has data would mislead whoever follows them)."""
    from hub.templates import SAMPLE, TEST_PATH

    alerts = [msgspec.structs.replace(alert, summary=TEST_TITLE) for alert in SAMPLE.alerts]
    return msgspec.structs.replace(
        SAMPLE,
        incident_id=0,
        title=TEST_TITLE,
        receiver=receiver,
        alerts=alerts,
        incident_url=base_url + TEST_PATH,
        ack_url=base_url + TEST_PATH,
    )


def _load(path: str) -> Config | None:
    """The config, or None once its problems are printed."""
    from hub import config as config_module

    try:
        return config_module.load(path)
    except ConfigError as e:
        _print_problems(path, e.problems)
        return None


def port(text: str) -> int:
    """A TCP port from the command line, refused as ``[server] port`` is outside 1-65535."""
    from hub.config import PORTS

    number = int(text) if text.isdecimal() else 0
    if number not in PORTS:
        raise argparse.ArgumentTypeError(f"expected a port 1-65535, got {text!r}")
    return number


def label(text: str) -> tuple[str, str]:
    """``name=value`` from the command line, read as an ``=`` matcher as ``amtool config
    routes test`` reads it (``"app.kubernetes.io/name"=x``, ``name="value"``); a name with
    other characters may also go unquoted (``my-label=x``). Another operator is refused,
    not read into the name (``env!=prod`` as the label ``env!``)."""
    try:
        parsed = matchers.parse(text)
    except ValueError:
        parsed = []
    if len(parsed) == 1 and parsed[0].op == "=":
        return parsed[0].name, parsed[0].value
    if len(parsed) == 1:
        raise argparse.ArgumentTypeError(f"expected label=value, got {text!r}")
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"expected label=value, got {text!r}")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return name.strip(), value


def _print_problems(path: str, problems: list[str]) -> None:
    print(f"{path}: {len(problems)} problem(s):", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    """The whole command line; API connection defaults come from the environment."""
    root = argparse.ArgumentParser(prog="hub", description="Webhook-driven alerting hub.")
    cli_api.add_connection_options(root, cli_api.connection_defaults(os.environ))
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the hub")
    run.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    run.add_argument("--host", help="address to bind (default: [server] host)")
    run.add_argument("--port", type=port, help="port to bind (default: [server] port)")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    run.set_defaults(func=serve)
    check = commands.add_parser("check-config", help="validate a config file and exit")
    given = check.add_mutually_exclusive_group()  # --config as every command, or alone
    given.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    given.add_argument("path", nargs="?", metavar="PATH", help="the same, given alone")
    check.set_defaults(func=check_config)
    _offline(commands)
    cli_api.register(commands)
    return root


def _offline(commands: argparse._SubParsersAction) -> None:
    routes = commands.add_parser("route-test", help="which receivers a label set reaches")
    routes.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    routes.add_argument("-v", "--verbose", action="store_true", help="show group key and timing")
    routes.add_argument("labels", nargs="*", type=label, help="label=value ...")
    routes.set_defaults(func=route_test)
    notify = commands.add_parser("notify-test", help="send a test message to a receiver")
    notify.add_argument("receiver", help="receiver name from the config")
    notify.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    notify.set_defaults(func=notify_test)
    copy = commands.add_parser("backup", help="write a consistent copy of the store to a file")
    copy.add_argument(
        "dest",
        help="file to write (refused if it exists, unless --force), or a folder to write"
        " STORE-YYYYMMDDTHHMMSSZ.db into",
    )
    copy.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    copy.add_argument("--force", action="store_true", help="replace DEST if it exists")
    copy.set_defaults(func=backup)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
