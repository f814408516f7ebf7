import contextlib
import json
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub import store as store_module
from hub.alerts import matchable
from hub.config import InhibitRule
from hub.events import SEVERITIES
from hub.inhibit import Inhibitor, Rule, inhibited_by, source_filter, source_names


def rule(source, target, equal=()) -> Rule:
    return Rule.from_config(
        InhibitRule(source_matchers=source, target_matchers=target, equal=list(equal))
    )


DC_DOWN = rule(['alertname="DatacenterDown"'], ['alertname=~"Host.*"'], ["dc"])
CRITICAL_MUTES_WARNING = rule(['severity="critical"'], ['severity="warning"'], ["service"])


@pytest.mark.parametrize(
    ("target", "firing", "expected"),
    [
        ({"alertname": "HostDown", "dc": "fra"}, [{"alertname": "DatacenterDown", "dc": "fra"}], 0),
        (
            {"alertname": "HostDown", "dc": "ams"},
            [{"alertname": "DatacenterDown", "dc": "fra"}],
            None,
        ),
        ({"alertname": "HostDown"}, [{"alertname": "DatacenterDown"}], 0),
        ({"alertname": "HostDown", "dc": "fra"}, [{"alertname": "DatacenterDown"}], None),
        ({"alertname": "HostDown"}, [{"alertname": "DatacenterDown", "dc": "fra"}], None),
        (
            {"alertname": "DiskFull", "dc": "fra"},
            [{"alertname": "DatacenterDown", "dc": "fra"}],
            None,
        ),
        ({"alertname": "HostDown", "dc": "fra"}, [], None),
        ({"alertname": "HostDown", "dc": "fra"}, [{"alertname": "HostDown", "dc": "fra"}], None),
    ],
)
def test_a_target_is_muted_while_a_source_with_equal_labels_fires(target, firing, expected):
    assert inhibited_by([DC_DOWN], target, firing) == expected


def test_it_names_the_first_rule_that_mutes():
    rules = [DC_DOWN, CRITICAL_MUTES_WARNING]
    firing = [{"severity": "critical", "service": "api"}]
    assert inhibited_by(rules, {"severity": "warning", "service": "api"}, firing) == 1


def test_an_alert_matching_both_sides_does_not_inhibit_itself():
    both = rule(['team="ops"'], ['team="ops"'], ["dc"])
    alert = {"team": "ops", "dc": "fra"}
    assert inhibited_by([both], alert, [alert]) is None


def test_an_alert_matching_both_sides_is_muted_by_a_source_only_alert():
    broad = rule(['severity=~"critical|warning"'], ['severity="warning"'], ["service"])
    warning = {"severity": "warning", "service": "api"}
    other_warning = {"severity": "warning", "service": "api", "instance": "b"}
    critical = {"severity": "critical", "service": "api"}
    assert inhibited_by([broad], warning, [warning, other_warning]) is None
    assert inhibited_by([broad], warning, [warning, critical]) == 0


def test_one_inhibitor_answers_for_many_alerts():
    firing = [{"alertname": "DatacenterDown", "dc": f"dc{i}"} for i in range(2000)]
    inhibitor = Inhibitor([DC_DOWN], firing)
    assert inhibitor.inhibited_by({"alertname": "HostDown", "dc": "dc1999"}) == 0
    assert inhibitor.inhibited_by({"alertname": "HostDown", "dc": "dc2000"}) is None


_label_sets = st.dictionaries(
    st.sampled_from(["severity", "service", "dc", "team"]),
    st.sampled_from(["critical", "warning", "api", "fra", ""]),
    max_size=4,
)
_matcher = st.builds(
    lambda name, op, value: f'{name}{op}"{value}"',
    st.sampled_from(["severity", "service", "dc", "team"]),
    st.sampled_from(["=", "!=", "=~", "!~"]),
    st.sampled_from(["critical", "warning|api", "", ".*", "fra"]),
)
_rules = st.lists(
    st.builds(
        rule,
        st.lists(_matcher, min_size=1, max_size=2),
        st.lists(_matcher, min_size=1, max_size=2),
        st.lists(st.sampled_from(["service", "dc", "team"]), max_size=2),
    ),
    max_size=3,
)


@given(_rules, _label_sets)
def test_inhibition_never_mutes_an_alert_by_itself(rules, labels):
    assert inhibited_by(rules, labels, [labels]) is None


@given(_rules, _label_sets, st.lists(_label_sets, max_size=5))
def test_the_index_agrees_with_the_definition(rules, target, firing):
    def by_definition(r: Rule) -> bool:
        def matches(ms, labels):
            return all(m.matches(labels) for m in ms)

        if not matches(r.target, target):
            return False
        two_sided = matches(r.source, target)
        return any(
            matches(r.source, f)
            and r.key(f) == r.key(target)
            and not (two_sided and matches(r.target, f))
            for f in firing
        )

    expected = next((i for i, r in enumerate(rules) if by_definition(r)), None)
    assert inhibited_by(rules, target, firing) == expected


@pytest.mark.parametrize(
    "source",
    [
        ['alertname=~"DatacenterDown"'],
        ['alertname!="DatacenterDown"'],
        ['dc=""'],
        ['"app.kubernetes.io/name"="db"'],
    ],
)
def test_a_rule_without_a_plain_equality_on_its_source_side_reads_every_firing_alert(source):
    """A regex, a negation, an empty value (a missing label matches it) or a name a
    JSON path would need quoting for cannot narrow the read: any firing alert may count."""
    assert source_filter([DC_DOWN, rule(source, ['alertname="HostDown"'])]) is None


def test_each_rule_narrows_the_read_to_its_plain_equalities():
    mixed = rule(['alertname="DatacenterDown"', 'dc=~"f.*"'], ['alertname="HostDown"'])
    assert source_filter([mixed, CRITICAL_MUTES_WARNING]) == [
        (("alertname", "DatacenterDown"),),
        (("severity", "critical"),),
    ]


@pytest.fixture(scope="module")
def alerts_db(tmp_path_factory):
    """A store, and a connection that writes its alerts as a sender's events would leave
    them: a severity of their own, and labels that may hold a ``severity`` too."""
    path = str(tmp_path_factory.mktemp("inhibit") / "s.db")
    with store_module.opened(path) as store:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
            yield store, conn


def put_alerts(conn, alerts) -> None:
    conn.execute("DELETE FROM alerts")
    conn.executemany(
        "INSERT INTO alerts (fingerprint, source, status, severity, summary, labels,"
        " annotations, first_seen, last_seen, last_change) VALUES (?, 's', ?, ?, '', ?, '{}',"
        " 1, 1, 1)",
        [(f"s/{n}", *alert) for n, alert in enumerate(alerts)],
    )


def test_the_store_reads_each_rules_sources_and_spares_the_rest(alerts_db):
    store, conn = alerts_db
    put_alerts(
        conn,
        [
            ("firing", "warning", json.dumps({"alertname": "DatacenterDown", "dc": "fra"})),
            ("firing", "critical", json.dumps({"alertname": "HostDown"})),
            ("firing", "warning", json.dumps({"alertname": "Disk", "severity": "critical"})),
            ("firing", "critical", json.dumps({"alertname": "Cpu", "severity": "warning"})),
            ("firing", "warning", json.dumps({"alertname": "HostDown"})),
            ("resolved", "critical", json.dumps({"alertname": "DatacenterDown"})),
            ("firing", "warning", json.dumps({"alertname": "DatacenterDown", "dc": "b"}).encode()),
            ("firing", "warning", json.dumps({"alertname": "Bytes"}).encode()),
        ],
    )
    wanted = source_filter([DC_DOWN, CRITICAL_MUTES_WARNING])
    read = store.reading().firing_alert_labels(wanted)
    assert sorted((labels["alertname"], labels.get("dc")) for labels in read) == [
        ("DatacenterDown", "b"),  # labels a hand edit left as bytes, read as Python reads them
        ("DatacenterDown", "fra"),  # a DC_DOWN source
        ("Disk", None),  # its severity label says critical
        ("HostDown", None),  # critical, by the alert's own severity
    ]
    assert len(store.reading().firing_alert_labels()) == 7


_stored = st.tuples(st.sampled_from(SEVERITIES), _label_sets)


def index_sources(conn: sqlite3.Connection, rules) -> tuple[list[str], list[str]]:
    """What the hub does at start and at each reload: index the rules' source labels."""
    with conn:
        return store_module.Tx(conn, set()).index_source_labels(source_names(rules))


@given(_rules, _label_sets, st.lists(_stored, max_size=6))
def test_the_narrowed_read_inhibits_as_the_whole_one(alerts_db, rules, target, stored):
    store, conn = alerts_db
    index_sources(conn, rules)
    put_alerts(conn, [("firing", severity, json.dumps(labels)) for severity, labels in stored])
    every = [matchable({"severity": severity, "labels": labels}) for severity, labels in stored]
    narrowed = store.reading().firing_alert_labels(source_filter(rules))
    assert Inhibitor(rules, narrowed).inhibited_by(target) == Inhibitor(rules, every).inhibited_by(
        target
    )


def test_each_rules_sources_are_found_through_the_index_of_one_of_its_labels(alerts_db):
    """At 200,000 firing alerts, reading every one's labels to find the few sources
    took 119-174 ms a dispatcher round; through the indexes, 1.0-5.6 ms."""
    _, conn = alerts_db
    rules = [DC_DOWN, CRITICAL_MUTES_WARNING]
    index_sources(conn, [])  # what other tests' rules left
    created, dropped = index_sources(conn, rules)
    assert len(created) == 2 and dropped == []
    sql, params = store_module._firing_sources(source_filter(rules))
    plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    searches = [step for step in plan if step.startswith("SEARCH alerts")]
    assert searches == [f"SEARCH alerts USING INDEX {index} (<expr>=?)" for index in created]
    assert index_sources(conn, rules) == ([], [])
    assert index_sources(conn, []) == ([], created)
