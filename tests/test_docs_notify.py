"""The README's routing and template examples, put together, are a valid config that
routes the way the text says."""

import re
from pathlib import Path

from test_docs_sources import AnyEnvironment

from hub import config, routing

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Notifications", 1)[1].split("\n## ", 1)[0]
SNIPPETS = re.findall(r"```toml\n(.*?)```", SECTION, re.S)
RECEIVERS = "".join(
    f'[[receivers]]\nname = "{name}"\nurls = ["json://localhost"]\n' for name in ("ops", "pager")
)


def test_the_routing_and_template_examples_load_and_route_as_described():
    loaded = config.parse("\n".join([*SNIPPETS, RECEIVERS]), AnyEnvironment())
    tree = routing.resolve(loaded.route)
    assert routing.route_test(tree, {"service": "postgres", "severity": "critical"}) == [
        "dba",
        "pager",
    ]
    assert routing.route_test(tree, {"service": "web"}) == ["ops"]
    assert loaded.receiver("dba").title is not None
