"""What the running hub derives from its config once per load: the routing tree,
compiled time intervals, inhibition rules and templates. Rebuilt atomically on
reload, so the hot paths never parse config."""

from __future__ import annotations

from dataclasses import dataclass

from hub import inhibit, routing, timeintervals
from hub.config import Config, Flapping
from hub.templates import Templates


@dataclass(frozen=True)
class Rules:
    config: Config
    tree: routing.RouteNode
    send_resolved: dict[str, bool]
    intervals: dict[str, list[timeintervals.Interval]]
    inhibit_rules: tuple[inhibit.Rule, ...]
    templates: Templates

    @classmethod
    def from_config(cls, config: Config) -> Rules:
        return cls(
            config=config,
            tree=routing.resolve(config.route),
            send_resolved={r.name: r.send_resolved for r in config.receivers},
            intervals=timeintervals.compile_all(config.time_intervals),
            inhibit_rules=tuple(inhibit.Rule.from_config(r) for r in config.inhibit_rules),
            templates=Templates(config),
        )

    @property
    def flapping(self) -> Flapping:
        return self.config.flapping

    @property
    def reopen_window(self) -> float:
        return self.config.incidents.reopen_window
