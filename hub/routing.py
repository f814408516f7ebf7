"""The routing tree, with Alertmanager's semantics.

``resolve`` turns ``[route]`` into a tree once, at config load: matchers are parsed
and every node carries its effective settings (unset ones are inherited from the
parent). ``match`` walks the tree for an alert's labels. The first match owns the
alert's incident (``group_key``); matches reached through ``continue`` only add
receivers to it.

A route is known by two names. ``route_id`` is its position, for people to find it in
the file. ``key``, as Alertmanager's route key, is the matchers of every route from the
root down to it (``{}/{team="db"}``): the group key starts with it, so a reload that
inserts or reorders routes does not move an alert into another route's incident.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii

from hub.config import Route
from hub.grouping import Timing
from hub.matchers import Matcher, matches_all, parse_all

GROUP_BY_ALL = "..."
_DEFAULT_TIMING = Timing(group_wait=30.0, group_interval=300.0, repeat_interval=4 * 3600.0)


@dataclass(frozen=True)
class RouteMatch:
    """What a matched route decides: who is told, how alerts group, and when.

    ``route_id`` is the node's position in the tree ("0" is the root, "0.2.1" the second
    child of its third child), shown to people; it moves when routes are inserted or
    reordered. ``key`` is the node's matcher path (module docstring), which does not.
    ``group_by`` is None when the route groups by all labels (``["..."]``).
    Time intervals are the route's own, not inherited (as in Alertmanager).
    """

    route_id: str
    key: str
    receiver: str
    group_by: tuple[str, ...] | None
    timing: Timing
    escalation: str | None
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteNode:
    settings: RouteMatch
    matchers: tuple[Matcher, ...]
    continue_: bool
    routes: tuple[RouteNode, ...]


def resolve(route: Route) -> RouteNode:
    """Build the tree from a checked config (``config.check`` reports bad matchers)."""
    matchers = tuple(parse_all(route.matchers))
    root = RouteMatch("0", "", route.receiver or "", (), _DEFAULT_TIMING, None)
    return _node(route, matchers, _inherit(root, route, "0", _written(matchers)))


def _node(route: Route, matchers: tuple[Matcher, ...], settings: RouteMatch) -> RouteNode:
    parsed = [tuple(parse_all(child.matchers)) for child in route.routes]
    keys = _child_keys(settings.key, parsed)
    children = tuple(
        _node(child, own, _inherit(settings, child, f"{settings.route_id}.{i}", key))
        for i, (child, own, key) in enumerate(zip(route.routes, parsed, keys, strict=True))
    )
    return RouteNode(settings, matchers, route.continue_, children)


def _child_keys(parent: str, children: list[tuple[Matcher, ...]]) -> list[str]:
    """The children's keys: the parent's, then each child's matchers. A child with the
    same matchers as earlier siblings adds its count among them (``#2``), so every route
    has a key of its own that an unrelated sibling added before it does not change."""
    seen: Counter[str] = Counter()
    keys = []
    for matchers in children:
        written = _written(matchers)
        seen[written] += 1
        suffix = f"#{seen[written]}" if seen[written] > 1 else ""
        keys.append(f"{parent}/{written}{suffix}")
    return keys


def _written(matchers: tuple[Matcher, ...]) -> str:
    """Matchers as Alertmanager writes a route's in its key: sorted, in braces."""
    return "{" + ",".join(sorted(str(m) for m in matchers)) + "}"


def _inherit(parent: RouteMatch, route: Route, route_id: str, key: str) -> RouteMatch:
    group_by = parent.group_by if route.group_by is None else _group_by(route.group_by)
    timing = Timing(
        group_wait=_pick(route.group_wait, parent.timing.group_wait),
        group_interval=_pick(route.group_interval, parent.timing.group_interval),
        repeat_interval=_pick(route.repeat_interval, parent.timing.repeat_interval),
    )
    return RouteMatch(
        route_id=route_id,
        key=key,
        receiver=route.receiver or parent.receiver,
        group_by=group_by,
        timing=timing,
        escalation=route.escalation or parent.escalation,
        mute_time_intervals=tuple(route.mute_time_intervals),
        active_time_intervals=tuple(route.active_time_intervals),
    )


def _pick(value: float | None, inherited: float) -> float:
    return inherited if value is None else float(value)


def _group_by(names: list[str]) -> tuple[str, ...] | None:
    return None if GROUP_BY_ALL in names else tuple(names)


def match(tree: RouteNode, labels: Mapping[str, str]) -> list[RouteMatch]:
    """Every route the alert goes to, in order; the first one owns its incident.

    Depth first: the deepest matching routes win; a matching child without
    ``continue`` stops the search among its later siblings; a node none of whose
    children match is itself the match.
    """
    if not matches_all(tree.matchers, labels):
        return []
    found: list[RouteMatch] = []
    for child in tree.routes:
        matched = match(child, labels)
        found += matched
        if matched and not child.continue_:
            break
    return found or [tree.settings]


def route_at(tree: RouteNode, route_id: str) -> RouteMatch | None:
    """The route at a position (a ``route_id``), if the tree has one there."""
    node = tree
    for step in route_id.split(".")[1:]:
        if int(step) >= len(node.routes):
            return None
        node = node.routes[int(step)]
    return node.settings


def group_key(route: RouteMatch, labels: Mapping[str, str]) -> str:
    """The incident key: the route's key plus the values of its ``group_by`` labels.

    Label names are sorted and values JSON-quoted, so the key is stable and
    unambiguous whatever characters the values hold. Quoted as ``json.dumps`` quotes a
    string, by the function it calls, without its way there: a key per new alert.
    """
    names = sorted(labels) if route.group_by is None else _sorted_names(route.group_by)
    pairs = ",".join(f"{name}={encode_basestring_ascii(labels.get(name, ''))}" for name in names)
    return f"{route.key}:{{{pairs}}}"


@functools.lru_cache(maxsize=256)
def _sorted_names(group_by: tuple[str, ...]) -> tuple[str, ...]:
    """A route's ``group_by`` names, each once and sorted: the same for each alert."""
    return tuple(sorted(set(group_by)))


def route_test(tree: RouteNode, labels: Mapping[str, str]) -> list[str]:
    """Receiver names in match order, as ``amtool config routes test`` prints them."""
    return [found.receiver for found in match(tree, labels)]


def check(route: Route, path: str = "route") -> list[str]:
    """Problems the types cannot catch: bad matchers and misused ``"..."``."""
    problems = []
    for i, text in enumerate(route.matchers):
        try:
            parse_all([text])
        except ValueError as e:
            problems.append(f"{path}.matchers[{i}]: {e}")
    if route.group_by and GROUP_BY_ALL in route.group_by and len(route.group_by) > 1:
        problems.append(f'{path}.group_by: "..." means all labels and must stand alone')
    for i, child in enumerate(route.routes):
        problems += check(child, f"{path}.routes[{i}]")
    return problems
