"""The ``hub`` command: ``hub serve`` and ``hub check-config``."""

from __future__ import annotations

import argparse
import os
import sys

import msgspec

from hub import config as config_module
from hub.errors import ConfigError

DEFAULT_CONFIG = "alerts.toml"


def config_path(given: str | None) -> str:
    """The config file: the argument, else ``HUB_CONFIG``, else ``./alerts.toml``."""
    return given or os.environ.get("HUB_CONFIG") or DEFAULT_CONFIG


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hub import logs
    from hub.app import create_app

    logs.configure(args.log_level.upper())
    try:
        config = config_module.load(config_path(args.config))
    except ConfigError as e:
        _print_problems(config_path(args.config), e.problems)
        return 2
    server = msgspec.structs.replace(
        config.server,
        host=args.host or config.server.host,
        port=args.port if args.port is not None else config.server.port,
    )
    config = msgspec.structs.replace(config, server=server)
    uvicorn.run(
        create_app(config, config_path(args.config)),
        host=server.host,
        port=server.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    return 0


def check_config(args: argparse.Namespace) -> int:
    path = config_path(args.path)
    try:
        config = config_module.load(path)
    except ConfigError as e:
        _print_problems(path, e.problems)
        return 1
    for warning in config_module.warnings(config):
        print(f"warning: {warning}")
    print(f"{path}: ok ({len(config.sources)} sources, {len(config.receivers)} receivers)")
    return 0


def _print_problems(path: str, problems: list[str]) -> None:
    print(f"{path}: {len(problems)} problem(s):", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="hub", description="Webhook-driven alerting hub.")
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the hub")
    run.add_argument("--config", help="config file (default: $HUB_CONFIG or ./alerts.toml)")
    run.add_argument("--host", help="address to bind (default: [server] host)")
    run.add_argument("--port", type=int, help="port to bind (default: [server] port)")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    run.set_defaults(func=serve)
    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument(
        "path", nargs="?", help="config file (default: $HUB_CONFIG or ./alerts.toml)"
    )
    check.set_defaults(func=check_config)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
