from __future__ import annotations

import pytest

from hub import config, routing
from hub.errors import ConfigError

RECEIVERS = (
    "".join(
        f'[[receivers]]\nname = "{name}"\nurls = ["json://localhost/{name}"]\n'
        for name in ("default", "db", "web", "pager", "audit", "ops")
    )
    + '[[escalations]]\nname = "night"\nsteps = [{ notify = ["pager"] }]\n'
)

TREE = """
[route]
receiver = "default"
group_by = ["alertname"]

[[route.routes]]
matchers = ['service="db"']
receiver = "db"
group_wait = "10s"

  [[route.routes.routes]]
  matchers = ['severity="critical"']
  receiver = "pager"
  group_by = ["..."]
  repeat_interval = "1h"

[[route.routes]]
matchers = ['service=~"web|api"']
receiver = "web"
group_by = ["cluster", "alertname"]
continue = true

[[route.routes]]
matchers = ['env!="dev"']
receiver = "audit"
escalation = "night"
"""


def tree_of(text: str = TREE) -> routing.RouteNode:
    return routing.resolve(config.parse(RECEIVERS + text, {}).route)


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"service": "db", "env": "dev"}, ["db"]),
        ({"service": "db", "severity": "critical"}, ["pager"]),
        ({"service": "api", "env": "prod"}, ["web", "audit"]),
        ({"service": "web", "env": "dev"}, ["web"]),
        ({"service": "webshop", "env": "prod"}, ["audit"]),
        ({"env": "dev"}, ["default"]),
    ],
)
def test_route_test_lists_receivers_like_amtool(labels, receivers):
    assert routing.route_test(tree_of(), labels) == receivers


def test_a_quoted_label_name_routes_on_a_label_a_bare_name_cannot_spell():
    """Sources store labels such as app.kubernetes.io/name; a route can name them."""
    text = (
        '[route]\nreceiver = "default"\n[[route.routes]]\nreceiver = "db"\n'
        'matchers = [\'"app.kubernetes.io/name"=~"postgres|mysql"\']\n'
    )
    tree = tree_of(text)
    assert routing.route_test(tree, {"app.kubernetes.io/name": "mysql"}) == ["db"]
    assert routing.route_test(tree, {"name": "mysql"}) == ["default"]


def test_continue_fans_out_to_both_receivers():
    matches = routing.match(tree_of(), {"service": "web", "env": "prod"})
    assert [(m.route_id, m.receiver) for m in matches] == [("0.1", "web"), ("0.2", "audit")]


def test_a_match_without_continue_stops_at_the_first_sibling():
    text = """
    [route]
    receiver = "default"
    [[route.routes]]
    matchers = ['team="a"']
    receiver = "db"
    [[route.routes]]
    matchers = ['team="a"']
    receiver = "web"
    """
    assert routing.route_test(tree_of(text), {"team": "a"}) == ["db"]


def test_root_without_children_matches_everything():
    text = '[route]\nreceiver = "default"\n'
    assert [m.route_id for m in routing.match(tree_of(text), {})] == ["0"]


@pytest.mark.parametrize(
    ("labels", "route_id", "group_by", "timing", "escalation"),
    [
        ({"env": "dev"}, "0", ("alertname",), (30, 300, 14400), None),
        ({"service": "db", "env": "dev"}, "0.0", ("alertname",), (10, 300, 14400), None),
        ({"service": "db", "severity": "critical"}, "0.0.0", None, (10, 300, 3600), None),
        ({"service": "web"}, "0.1", ("cluster", "alertname"), (30, 300, 14400), None),
        ({"env": "prod"}, "0.2", ("alertname",), (30, 300, 14400), "night"),
    ],
)
def test_unset_settings_are_inherited_from_the_parent(
    labels, route_id, group_by, timing, escalation
):
    found = routing.match(tree_of(), labels)[0]
    assert found.route_id == route_id
    assert found.group_by == group_by
    assert (found.timing.group_wait, found.timing.group_interval) == timing[:2]
    assert found.timing.repeat_interval == timing[2]
    assert found.escalation == escalation


WEB = '{}/{service=~"web|api"}'


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (
            {"alertname": "Down", "cluster": "eu", "x": "1"},
            WEB + ':{alertname="Down",cluster="eu"}',
        ),
        ({"alertname": "Down"}, WEB + ':{alertname="Down",cluster=""}'),
        (
            {"alertname": 'a",b="c', "cluster": "eu"},
            WEB + ':{alertname="a\\",b=\\"c",cluster="eu"}',
        ),
    ],
)
def test_group_key_is_the_route_and_its_group_by_values(labels, expected):
    web = routing.match(tree_of(), {"service": "web"})[0]
    assert routing.group_key(web, labels) == expected


def test_group_by_all_labels_keys_on_every_label():
    pager = routing.match(tree_of(), {"service": "db", "severity": "critical"})[0]
    labels = {"service": "db", "severity": "critical", "host": "a"}
    expected = '{}/{service="db"}/{severity="critical"}:{host="a",service="db",severity="critical"}'
    assert routing.group_key(pager, labels) == expected


def test_alerts_differing_outside_group_by_share_a_group_key():
    web = routing.match(tree_of(), {"service": "web"})[0]
    first = routing.group_key(web, {"alertname": "Down", "cluster": "eu", "host": "a"})
    second = routing.group_key(web, {"alertname": "Down", "cluster": "eu", "host": "b"})
    assert first == second


# TREE with a route inserted first and its last two routes swapped: every route the
# alerts below reach has another position, but the same matchers.
REORDERED = """
[route]
receiver = "default"
group_by = ["alertname"]

[[route.routes]]
matchers = ['team="new"']
receiver = "ops"

[[route.routes]]
matchers = ['env!="dev"']
receiver = "audit"
escalation = "night"

[[route.routes]]
matchers = ['service="db"']
receiver = "db"
group_wait = "10s"

  [[route.routes.routes]]
  matchers = ['severity="critical"']
  receiver = "pager"
  group_by = ["..."]
  repeat_interval = "1h"

[[route.routes]]
matchers = ['service=~"web|api"']
receiver = "web"
group_by = ["cluster", "alertname"]
continue = true
"""


@pytest.mark.parametrize(
    ("labels", "moved"),
    [
        ({"service": "db", "env": "dev", "alertname": "Slow"}, ("0.0", "0.2")),
        ({"service": "db", "severity": "critical", "env": "dev"}, ("0.0.0", "0.2.0")),
        ({"service": "web", "env": "dev", "cluster": "eu"}, ("0.1", "0.3")),
        ({"service": "webshop", "env": "prod", "alertname": "Down"}, ("0.2", "0.1")),
        ({"env": "dev", "alertname": "Down"}, ("0", "0")),
    ],
)
def test_inserting_and_reordering_routes_moves_their_ids_but_keeps_their_group_keys(labels, moved):
    """A reload that changes positions must not send an alert to another route's
    incident: the group key names the route by its matchers, not its position."""
    before, after = (routing.match(tree_of(text), labels)[0] for text in (TREE, REORDERED))
    assert (before.route_id, after.route_id) == moved
    assert after.receiver == before.receiver
    assert routing.group_key(after, labels) == routing.group_key(before, labels)


SAME_MATCHERS = """
[route]
receiver = "default"

[[route.routes]]
matchers = ['team="db"', 'env="prod"']
receiver = "db"
continue = true

[[route.routes]]
matchers = ['env = "prod"', 'team="db"']
receiver = "pager"
continue = true

[[route.routes]]
matchers = ['team="db"', 'env="prod"']
receiver = "audit"
"""


def test_siblings_with_the_same_matchers_get_keys_of_their_own():
    """Written in any order or spacing, the same matchers are the same route key; the
    later siblings that have them are told apart by their count among them."""
    found = routing.match(tree_of(SAME_MATCHERS), {"team": "db", "env": "prod"})
    assert [(m.route_id, m.key) for m in found] == [
        ("0.0", '{}/{env="prod",team="db"}'),
        ("0.1", '{}/{env="prod",team="db"}#2'),
        ("0.2", '{}/{env="prod",team="db"}#3'),
    ]


@pytest.mark.parametrize(
    ("route_text", "problem"),
    [
        (
            '[route]\nreceiver = "default"\n[[route.routes]]\nreceiver = "db"\n'
            '[[route.routes]]\nreceiver = "db"\nmatchers = ["service=~\\"(\\""]\n',
            "route.routes[1].matchers[0]: bad regular expression",
        ),
        (
            '[route]\nreceiver = "default"\n[[route.routes]]\nreceiver = "db"\n'
            'matchers = ["service=~\\"(?=db)db.*\\""]\n',
            "route.routes[0].matchers[0]: bad regular expression '(?=db)db.*': invalid perl"
            " operator: (?= (RE2 syntax, as Alertmanager's Go regexp: no lookaround",
        ),
        (
            '[route]\nreceiver = "default"\n[[route.routes]]\nreceiver = "db"\n'
            'matchers = ["==x"]\n',
            "route.routes[0].matchers[0]: bad matcher",
        ),
        (
            '[route]\nreceiver = "default"\n[[route.routes]]\nreceiver = "db"\n'
            "matchers = ['app.kubernetes.io/name=\"db\"']\n",
            "route.routes[0].matchers[0]: bad matcher 'app.kubernetes.io/name=\"db\"': quote a"
            " label name with characters other than letters, digits and _:"
            ' "app.kubernetes.io/name"="db"',
        ),
        (
            '[route]\nreceiver = "default"\ngroup_by = ["...", "host"]\n',
            'route.group_by: "..." means all labels and must stand alone',
        ),
        (
            '[route]\nreceiver = "default"\nmatchers = ["a=\\"b\\""]\n',
            "route.matchers: the root route takes every alert",
        ),
        (
            '[route]\nreceiver = "default"\ncontinue = true\n',
            "route.continue: the root route has no siblings to go on to;"
            " set continue on a route in routes",
        ),
    ],
)
def test_config_check_names_the_bad_route_key(route_text, problem):
    with pytest.raises(ConfigError) as raised:
        config.parse(RECEIVERS + route_text, {})
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems
