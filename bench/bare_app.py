"""The baseline: a bare Litestar endpoint that only decodes the native body.

Run by bench/ingest.py under the same uvicorn settings as the hub, so the ratio
between the two is the cost of everything hub does beyond decoding.
"""

from __future__ import annotations

import msgspec
from litestar import Litestar, Request, Response, post
from litestar.params import FromPath

from hub.decoders.native import NativeEvent

_decode = msgspec.json.Decoder(NativeEvent | list[NativeEvent]).decode


@post("/webhooks/{source:str}")
async def receive(request: Request, source: FromPath[str]) -> Response:
    parsed = _decode(await request.body())
    accepted = len(parsed) if isinstance(parsed, list) else 1
    return Response({"accepted": accepted, "source": source}, status_code=202)


app = Litestar([receive], logging_config=None, openapi_config=None)
