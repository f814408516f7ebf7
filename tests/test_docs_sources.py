"""Every ``[[sources]]`` example in docs/sources.md is a valid config, every curl
recipe there is accepted by a hub configured as its section shows, and every format
and auth type is documented."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hub import config
from hub.auth import REASONS, SCHEMES
from hub.decoders import DECODERS

TESTS = Path(__file__).parent
DOC = (TESTS.parent / "docs" / "sources.md").read_text(encoding="utf-8")
SNIPPETS = [
    block for block in re.findall(r"```toml\n(.*?)```", DOC, re.S) if "[[sources]]" in block
]
TAIL = '\n[[receivers]]\nname = "ops"\nurls = ["json://localhost"]\n[route]\nreceiver = "ops"\n'
HEAD = '[server]\nhost = "127.0.0.1"\nport = {port}\n[storage]\npath = "{db}"\n'
SECRET = "secret-value"
# The files the recipes post by bare name, as a sender would have them.
SAMPLES = {
    "body.json": "grafana/firing.json",
    "order.json": "generic/shopify-order.json",
    "event.json": "generic/stripe-payment-failed.json",
}


def recipes() -> list[tuple[str, str]]:
    """Each ``sh`` block posting to hub, with the ``[[sources]]`` example before it."""
    found, snippet = [], ""
    for kind, block in re.findall(r"```(toml|sh)\n(.*?)```", DOC, re.S):
        if kind == "toml" and "[[sources]]" in block:
            snippet = block
        elif kind == "sh" and "https://hub.example/webhooks/" in block:
            found.append((snippet, block))
    return found


RECIPES = recipes()


class AnyEnvironment(dict):
    """Every ${VAR} is set, to a value that is valid for any key."""

    def __contains__(self, name: object) -> bool:
        return True

    def __getitem__(self, name: str) -> str:
        return "secret-value"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.split('"')[1] for s in SNIPPETS])
def test_each_source_example_is_a_valid_config(snippet):
    config.parse(snippet + TAIL, AnyEnvironment())


def test_there_is_an_example_for_each_format():
    assert {f'format = "{name}"' for name in DECODERS if name != "native"} <= {
        line.strip() for block in SNIPPETS for line in block.splitlines()
    }


@pytest.mark.parametrize("name", [*DECODERS, *SCHEMES, *REASONS])
def test_each_format_auth_type_and_reason_is_documented(name):
    assert f"`{name}`" in DOC


@pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "curl", "openssl")),
    reason="the recipes need bash, curl and openssl",
)
@pytest.mark.parametrize(
    ("snippet", "recipe"),
    RECIPES,
    ids=[re.search(r"/webhooks/([^/ ]+)", r).group(1) for _, r in RECIPES],
)
def test_each_curl_recipe_is_accepted_as_written(snippet, recipe, hub_factory, tmp_path):
    """Run as written, with hub's address, the secrets and ``<token>`` filled in: a
    signing recipe that signs other bytes than curl sends would be refused (401)."""
    name = re.search(r"/webhooks/([^/ ]+)", recipe).group(1)
    configured = re.sub(r"\$\{\w+\}", SECRET, snippet + TAIL)
    hub = hub_factory(HEAD + configured.replace("{", "{{").replace("}", "}}"))
    work = tmp_path / "sender"
    work.mkdir()
    (work / "tests").symlink_to(TESTS)
    for file, sample in SAMPLES.items():
        shutil.copyfile(TESTS / "fixtures" / sample, work / file)
    script = recipe.replace("https://hub.example", hub.url).replace("<token>", SECRET)
    variables = dict.fromkeys(re.findall(r"\$\{?([A-Z_]+)", recipe), SECRET)
    ran = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        check=False,
        cwd=work,
        env={"PATH": os.environ["PATH"], **variables},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ran.returncode == 0, ran.stderr
    with hub.client() as http:
        deliveries = http.get("/api/v1/events", params={"source": name}).json()
        assert len(deliveries) == 1, f"refused: {ran.stdout}"
        delivery = http.get(f"/api/v1/events/{deliveries[0]['id']}").json()
    assert delivery["status_code"] in (200, 202), delivery["answer"]
    assert delivery["events"], delivery["answer"]
