"""Builders shared by the decoder and auth tests: a Source or Auth from plain values,
and the payload samples under ``tests/fixtures/<format>/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from hub import config

FIXTURES = Path(__file__).parent / "fixtures"


def make_source(format: str = "native", **keys: Any) -> config.Source:
    raw = {"name": "test", "format": format, "auth": {"type": "none"}, **keys}
    return msgspec.convert(raw, config.Source, dec_hook=config._dec_hook)


def make_auth(**keys: Any) -> config.Auth:
    return msgspec.convert(keys, config.Auth, dec_hook=config._dec_hook)


def fixture(format: str, name: str) -> bytes:
    return (FIXTURES / format / name).read_bytes()


def fixture_json(format: str, name: str) -> Any:
    return msgspec.json.decode(fixture(format, name))


def encode(value: Any) -> bytes:
    return msgspec.json.encode(value)
