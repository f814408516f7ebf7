"""Every ``[[sources]]`` example in docs/sources.md is a valid config, and every
format and auth type is documented."""

import re
from pathlib import Path

import pytest

from hub import config
from hub.auth import REASONS, SCHEMES
from hub.decoders import DECODERS

DOC = (Path(__file__).parent.parent / "docs" / "sources.md").read_text(encoding="utf-8")
SNIPPETS = [
    block for block in re.findall(r"```toml\n(.*?)```", DOC, re.S) if "[[sources]]" in block
]
TAIL = '\n[[receivers]]\nname = "ops"\nurls = ["json://localhost"]\n[route]\nreceiver = "ops"\n'


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
