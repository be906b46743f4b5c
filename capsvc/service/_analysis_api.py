"""The API of a session's flight recorder, conversations and I/O series.

Thin IO module over ``_analysis`` and ``ServiceSession``; errors are the service's (``_http``'s
middleware answers them as JSON): 404 no such session, 409 a session without the sink asked
about (or one running in worker processes, or stopped, for a dump), 400 a bad query value.

- ``POST /v1/sessions/{name}/dump``: write what the session's flight recorder holds to a new
  file below the output directory (its name from the recorder's ``path`` template); answers
  201 with the file's name (for ``GET /v1/files/NAME``), packets, bytes and first/last packet
  times.
- ``GET /v1/sessions/{name}/conversations?top=20&by=bytes|packets``: the top conversations
  (address pairs, TCP and UDP 5-tuples) and endpoints, with each table's error bound.
- ``GET /v1/sessions/{name}/series[?last=SECONDS]``: packets and bytes per second (in total
  and per transport protocol) for the last minutes.
"""

from __future__ import annotations

import asyncio
import urllib.parse

from aiohttp import web

from .._errors import ConflictError
from ._analysis import conversations_body, parse_last, parse_top, series_body
from ._config import LIVE_SOURCES
from ._managed import ServiceSession
from ._service import CaptureService

__all__ = ["ROUTES", "setup"]

ROUTES = web.RouteTableDef()
_SERVICE = web.AppKey("analysis_service", CaptureService)


def setup(app: web.Application, service: CaptureService) -> None:
    """Add the routes to ``app``."""
    app[_SERVICE] = service
    app.add_routes(ROUTES)


def _session(request: web.Request) -> ServiceSession:
    return request.app[_SERVICE].get(request.match_info["name"])


def _in_process(managed: ServiceSession) -> None:
    if managed.workers is not None:
        raise ConflictError(
            f"session {managed.name!r} runs in worker processes: its conversations and series "
            "are counted only in a session with workers = 1"
        )


@ROUTES.post("/v1/sessions/{name}/dump")
async def dump(request: web.Request) -> web.Response:
    """Write what a session's flight recorder holds to a new file."""
    managed = _session(request)
    record = await asyncio.to_thread(managed.dump)
    body = {"session": managed.name, **record._asdict()}
    location = "/v1/files/" + urllib.parse.quote(record.name)
    return web.json_response(body, status=201, headers={"Location": location})


@ROUTES.get("/v1/sessions/{name}/conversations")
async def conversations(request: web.Request) -> web.Response:
    """A session's top conversations and endpoints."""
    managed = _session(request)
    top, by = parse_top(request.query)
    _in_process(managed)
    sink = managed.conversations
    if sink is None:
        raise ConflictError(
            f"session {managed.name!r} counts no conversations (conversations = false)"
        )
    snap = await asyncio.to_thread(sink.snapshot, top, by)
    return web.json_response(conversations_body(managed.name, snap, top))


@ROUTES.get("/v1/sessions/{name}/series")
async def series(request: web.Request) -> web.Response:
    """A session's packets and bytes per second for the last minutes."""
    managed = _session(request)
    _in_process(managed)
    sink = managed.series
    if sink is None:
        raise ConflictError(f"session {managed.name!r} keeps no I/O series (series = false)")
    snap = await asyncio.to_thread(sink.snapshot)
    last = parse_last(request.query, snap.seconds)
    live = managed.running and managed.spec.source.type in LIVE_SOURCES
    return web.json_response(series_body(managed.name, snap, last=last, live=live))
