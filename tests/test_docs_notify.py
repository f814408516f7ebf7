"""The README's routing and template examples, put together, are a valid config that
routes the way the text says, and its email template keeps the ack link in both parts."""

import re
from pathlib import Path

from conftest import wait_for
from notify_support import WRITER, ack_link_in, fire, mail_to, receiver, start_hub
from test_docs_sources import AnyEnvironment

from hub import config, routing

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Notifications", 1)[1].split("\n## ", 1)[0]
SNIPPETS = re.findall(r"```toml\n(.*?)```", SECTION, re.S)
RECEIVERS = "".join(
    f'[[receivers]]\nname = "{name}"\nurls = ["json://localhost"]\n' for name in ("ops", "pager")
)
EXAMPLE = config.parse("\n".join([*SNIPPETS, RECEIVERS]), AnyEnvironment())


def test_the_routing_and_template_examples_load_and_route_as_described():
    tree = routing.resolve(EXAMPLE.route)
    assert routing.route_test(tree, {"service": "postgres", "severity": "critical"}) == [
        "dba",
        "pager",
    ]
    assert routing.route_test(tree, {"service": "web"}) == ["ops"]
    assert EXAMPLE.receiver("dba").title is not None


def test_the_dba_email_template_keeps_the_ack_link_in_the_plain_text_part(hub_factory, smtp):
    """Apprise writes the plain-text part from the HTML, keeping a link's text and not
    its address: the example must write the address out for it to survive."""
    mailbox, port = smtp
    dba = EXAMPLE.receiver("dba")
    receivers = receiver("dba", mail_to(port, "dba@example.com"), title=dba.title, body=dba.body)
    snippets = "".join(f"{name} = {text!r}\n" for name, text in EXAMPLE.templates.items())
    hub = start_hub(hub_factory, receivers, root="dba", tables="[templates]\n" + snippets)
    with hub.client(headers=WRITER) as http:
        fire(http, "replication lag above 30s", service="postgres")
        wait_for(lambda: mailbox.messages)
    (message,) = mailbox.messages
    assert message["Subject"] == "WARNING postgres: replication lag above 30s"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    link = ack_link_in(html, hub.url)
    assert f'href="{link}"' in html
    assert link in text, text
    assert "1 firing, 0 resolved." in text
    assert "Runbooks: https://wiki.example/runbooks" in text
