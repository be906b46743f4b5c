"""The HTTP control API over a CaptureService (aiohttp).

Thin IO module: handlers parse the request, call the service, and turn its answers and errors into
JSON. Every route but ``/healthz`` and the page's static shell (``_ui``) needs
``Authorization: Bearer <token>`` (the scheme in any case, RFC 7235; the token compared in
constant time); ``/metrics`` too unless ``metrics_auth`` is off. The files API (``_files_api``),
a session's recorder dump, conversations and I/O series (``_analysis_api``), ``/openapi.json``
(``_openapi``) and the page add their routes in ``build_app``.
``GET /v1/sessions/NAME/pcap`` takes ``filter`` and ``queue`` (the subscriber's queue in
packets, at most and by default 4096). Request bodies are bounded (``max_request_bytes``) and
must arrive within ``idle_timeout``; filters are parsed in a worker thread. Error statuses: 400
bad spec, body or filter, 401 no or wrong token, 403 path outside a service directory (or
through a link, or no regular file), 404 unknown session, file or interface, 409 name or path
taken or limit reached, 413 body too large, 503 capture backend not installed, 500 a failure of
the host (the message says what). Every answer is JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .._errors import (
    BackendUnavailableError,
    CapsvcError,
    CaptureFileError,
    ConfigError,
    FilterError,
    NoSuchInterfaceError,
    NotFoundError,
    PathOutsideError,
    ServiceError,
)
from .._packet import SNAPLEN_DEFAULT, PacketBatch
from ..sinks._pcap import pcap_header
from . import _analysis_api, _files_api, _openapi, _ui
from ._metrics import CONTENT_TYPE, scrape_sessions
from ._outputs import interface_exists
from ._service import CaptureService, ServiceSession
from ._subscribers import SUBSCRIBER_QUEUE_DEFAULT, BatchEncoder, Subscriber, Taken

__all__ = [
    "METRICS_AUTH_KEY",
    "PCAP_CONTENT_TYPE",
    "ROUTES",
    "SERVICE_KEY",
    "TOKEN_KEY",
    "TokenRef",
    "build_app",
]

log = logging.getLogger("capsvc.service")

PCAP_CONTENT_TYPE = "application/vnd.tcpdump.pcap"
#: How often an idle stream checks whether its client is still there (seconds).
STREAM_POLL = 0.25

#: Where the application keeps its CaptureService.
SERVICE_KEY = web.AppKey("service", CaptureService)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenRef:
    """The bearer token, replaceable on reload.

    Args:
        token: the token text (surrounding whitespace removed).
    """

    def __init__(self, token: str) -> None:
        self.value = token.strip()

    def check(self, header: str | None) -> bool:
        """True when ``header`` is ``Bearer <token>`` (the scheme in any case, RFC 7235);
        constant-time in the token. Bytes that are no UTF-8 never match (and never raise)."""
        if not header or not self.value:
            return False
        scheme, _, given = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        # aiohttp hands over undecodable header bytes as surrogates: keep them as bytes.
        raw = given.strip().encode("utf-8", "surrogateescape")
        return hmac.compare_digest(raw, self.value.encode("utf-8", "surrogateescape"))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


#: Where the application keeps its bearer token.
TOKEN_KEY = web.AppKey("token", TokenRef)
#: Whether /metrics needs the token.
METRICS_AUTH_KEY = web.AppKey("metrics_auth", bool)


def build_app(
    service: CaptureService, token: TokenRef, *, metrics_auth: bool = True
) -> web.Application:
    """Build the aiohttp application.

    Args:
        service: the service it controls (started by the caller).
        token: the bearer token every route but /healthz and the page's static shell requires.
        metrics_auth: /metrics needs the token too (default True).

    Returns:
        The application; run it with ``aiohttp.web.AppRunner``.
    """
    app = web.Application(
        middlewares=[_guard], client_max_size=service.config.service.max_request_bytes
    )
    app[SERVICE_KEY] = service
    app[TOKEN_KEY] = token
    app[METRICS_AUTH_KEY] = metrics_auth
    app.add_routes(ROUTES)
    _ui.setup(app)
    _files_api.setup(app, service)
    _analysis_api.setup(app, service)
    _openapi.setup(app, metrics_auth=metrics_auth)
    return app


def _public(request: web.Request) -> bool:
    """Served without the token: /healthz, the page's static shell, /metrics if so configured."""
    path = request.path
    if path == "/healthz" or _ui.is_shell(path):
        return True
    return path == "/metrics" and not request.app[METRICS_AUTH_KEY]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check the token, then turn every refusal capsvc raises into a JSON error."""
    token = request.app[TOKEN_KEY]
    if not _public(request) and not token.check(request.headers.get("Authorization")):
        resp = _error(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="capsvc"'
        return resp
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason)
    except PathOutsideError as exc:
        return _error(403, str(exc))
    except NoSuchInterfaceError as exc:
        return _error(404, str(exc))
    except ServiceError as exc:
        return _error(exc.status, str(exc))
    except (ConfigError, FilterError, CaptureFileError) as exc:  # a filter's has its caret
        return _error(400, str(exc))
    except RecursionError:  # a filter nested deeper than its parser goes
        return _error(400, "request: filter: nested too deeply")
    except BackendUnavailableError as exc:
        return _error(503, str(exc))
    except (CapsvcError, OSError) as exc:
        log.error("%s %s failed: %s", request.method, request.path, exc)
        return _error(500, str(exc))


ROUTES = web.RouteTableDef()


def _service(request: web.Request) -> CaptureService:
    return request.app[SERVICE_KEY]


@ROUTES.get("/healthz")
async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})  # nothing more without the token


@ROUTES.get("/v1/sessions")
async def _list_sessions(request: web.Request) -> web.Response:
    return web.json_response({"sessions": [s.info() for s in _service(request).sessions()]})


@ROUTES.post("/v1/sessions")
async def _create_session(request: web.Request) -> web.Response:
    service = _service(request)
    try:
        async with asyncio.timeout(service.config.service.idle_timeout):
            raw = await request.read()  # at most max_request_bytes, else 413
    except TimeoutError:
        raise ConfigError("request", "", "the body did not arrive in time") from None
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("request", "", f"body is not JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(
            "request", "", "body is not JSON capsvc reads: nested too deeply"
        ) from None
    # The spec (and its filter) is parsed in a worker thread by start_session.
    managed = await service.start_session(body, origin="request")
    return web.json_response(managed.info(), status=201)


@ROUTES.get("/v1/sessions/{name}")
async def _get_session(request: web.Request) -> web.Response:
    return web.json_response(_service(request).get(request.match_info["name"]).info())


@ROUTES.get("/v1/sessions/{name}/stats")
async def _get_stats(request: web.Request) -> web.Response:
    managed = _service(request).get(request.match_info["name"])
    return web.json_response(_stats_body(managed))


@ROUTES.delete("/v1/sessions/{name}")
async def _delete_session(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    final = await _service(request).stop_session(name)
    return web.json_response({"name": name, "state": "stopped", "stats": final._asdict()})


@ROUTES.get("/v1/sessions/{name}/pcap")
async def _stream_session(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    queue = _query_number(request.query.get("queue", "0"), "queue", integer=True)
    name = request.match_info["name"]
    filter_text = request.query.get("filter", "").strip()
    match = None
    if filter_text:
        target = service.get(name)
        match = await asyncio.to_thread(service.parse_subscriber_filter, filter_text, target)
    managed, sub = service.subscribe(
        name,
        filter_text,
        min(int(queue), SUBSCRIBER_QUEUE_DEFAULT) or SUBSCRIBER_QUEUE_DEFAULT,
        match=match,
    )
    try:
        return await _stream_pcap(request, managed, sub)
    finally:
        service.unsubscribe(managed, sub)


@ROUTES.get("/v1/capture")
async def _capture(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    q = request.query
    interface = q.get("interface", "")
    if not interface:
        raise ConfigError("request", "interface", "missing (?interface=NAME)")
    if not interface_exists(interface):
        raise NoSuchInterfaceError(interface)
    fmt = q.get("format", "pcap")
    if fmt not in ("pcap", "text"):
        raise ConfigError("request", "format", f"expected pcap or text, got {fmt!r}")
    duration = _query_number(q.get("duration", "0"), "duration")
    snaplen = int(_query_number(q.get("snaplen", "0"), "snaplen", integer=True))
    if snaplen > SNAPLEN_DEFAULT:
        raise ConfigError("request", "snaplen", f"must be at most {SNAPLEN_DEFAULT}")
    cap = service.config.service.max_duration
    if not cap and not duration:
        raise ConfigError("request", "duration", "required (no max_duration configured)")
    if cap and duration > cap:
        raise ConfigError("request", "duration", f"must be at most {cap:g} (max_duration)")
    managed, sub = await service.adhoc(
        interface, q.get("filter", ""), duration, snaplen, exclude=_own_connection(request)
    )
    try:
        if fmt == "text":
            return await _stream_text(request, managed, sub)
        return await _stream_pcap(request, managed, sub)
    finally:
        service.unsubscribe(managed, sub)
        with contextlib.suppress(NotFoundError):  # its duration ended it already
            await service.stop_session(managed.name)


@ROUTES.get("/metrics")
async def _metrics(request: web.Request) -> web.Response:
    service = _service(request)
    body = await asyncio.to_thread(
        scrape_sessions, service.sessions(), service.config.service.metrics_top
    )
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = CONTENT_TYPE
    return resp


def _stats_body(managed: ServiceSession) -> dict[str, Any]:
    return {
        "name": managed.name,
        "state": "running" if managed.running else "stopped",
        "stats": managed.stats()._asdict(),
        "subscribers": [s._asdict() for s in managed.subscriber_stats()],
    }


def _query_number(text: str, key: str, *, integer: bool = False) -> float:
    if len(text) > 32:
        raise ConfigError("request", key, "not a number (too long)")
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ConfigError("request", key, f"not a number: {text!r}") from None
    if value < 0 or not math.isfinite(value) or value > 1e9:
        raise ConfigError("request", key, f"must be a number between 0 and 1e9, got {text}")
    return value


def _own_connection(request: web.Request) -> list[tuple[str, int, str, int]]:
    """The TCP connection the request came on, to leave out of an ad hoc capture (none for a
    unix socket)."""
    transport = request.transport
    if transport is None:
        return []
    local = transport.get_extra_info("sockname")
    peer = transport.get_extra_info("peername")
    if not (isinstance(local, tuple) and isinstance(peer, tuple)):
        return []
    return [(str(local[0]), int(local[1]), str(peer[0]), int(peer[1]))]


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _pump(
    request: web.Request,
    sub: Subscriber,
    resp: web.StreamResponse,
    encode: Callable[[list[Taken]], Awaitable[bytes]],
) -> None:
    """Copy batches from a subscriber to the client until the stream ends or the client goes."""
    try:
        while True:
            batches = await sub.get_batches(STREAM_POLL)
            if batches is None:
                break
            if not batches:
                if _client_gone(request):
                    break
                continue
            await resp.write(await encode(batches))
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.write_eof()
    except (ConnectionError, asyncio.CancelledError):
        # The client went away (aiohttp raises ClientConnectionResetError, a ConnectionError).
        pass


async def _stream_pcap(
    request: web.Request, managed: ServiceSession, sub: Subscriber
) -> web.StreamResponse:
    snaplen = managed.snaplen
    resp = web.StreamResponse(headers=_stream_headers(managed, PCAP_CONTENT_TYPE))
    await resp.prepare(request)
    await resp.write(pcap_header(snaplen, managed.linktype, nanosecond=True))
    await _pump(request, sub, resp, managed.pcap_encoder)
    return resp


async def _stream_text(
    request: web.Request, managed: ServiceSession, sub: Subscriber
) -> web.StreamResponse:
    from ..sinks._text import TextWriter

    buf = io.StringIO()
    writer = TextWriter(buf, linktype=managed.linktype)

    def lines(batch: PacketBatch) -> bytes:
        buf.seek(0)
        buf.truncate()
        writer.write_batch(batch)
        return buf.getvalue().encode("utf-8", "replace")

    encode = BatchEncoder(lines, keep=1)  # one reader: nothing to share, only slicing

    resp = web.StreamResponse(headers=_stream_headers(managed, "text/plain; charset=utf-8"))
    await resp.prepare(request)
    await _pump(request, sub, resp, encode)
    return resp


def _stream_headers(managed: ServiceSession, content_type: str) -> dict[str, str]:
    """A stream's headers; ``X-Capsvc-Duration`` says how long a capture with an end lasts
    (an ad hoc capture asked for no duration gets ``max_duration``)."""
    headers = {
        "Content-Type": content_type,
        "Cache-Control": "no-store",
        "X-Capsvc-Session": managed.name,
    }
    if managed.spec.duration:
        headers["X-Capsvc-Duration"] = f"{managed.spec.duration:g}"
    return headers
