"""Decoders: one pure function per sender format, ``decode(body, source) -> Decoded``.

Each raises MalformedBody (400) when the body does not parse and InvalidPayload (422,
naming the field) when it parses to the wrong shape. Register new formats here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hub.decoders import native

if TYPE_CHECKING:
    from hub.config import Source
    from hub.decoders.common import Decoded

Decoder = Callable[[bytes, "Source"], "Decoded"]

DECODERS: dict[str, Decoder] = {
    "native": native.decode,
}
