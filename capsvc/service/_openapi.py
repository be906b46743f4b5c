"""``GET /openapi.json``: an OpenAPI 3.1 document generated from the application's routes.

Pure module apart from the handler. Every route the application has is listed (HEAD, which
aiohttp answers wherever GET is, is said once in the document's description); what each does
comes from ``OPERATIONS`` when it is there, else from the handler's docstring, so a route added
without either shows up as undocumented (and the tests fail). Paths are aiohttp's canonical
form, which is OpenAPI's (``/v1/sessions/{name}``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["OPERATIONS", "PUBLIC", "ROUTES", "Operation", "Param", "document", "setup"]


@dataclass(frozen=True)
class Param:
    """A query or path parameter."""

    name: str
    where: str  # "query", "path" or "header"
    description: str
    type: str = "string"
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """What one route does.

    Attributes:
        summary: one line.
        description: more, when there is more to say.
        params: its query parameters (path parameters are found from the path).
        responses: status -> (description, media type); 401 is added to every route that needs
            the token, the error statuses' body is the Error schema.
        body: the request body's schema reference, if it takes one.
    """

    summary: str
    description: str = ""
    params: tuple[Param, ...] = ()
    responses: Mapping[int, tuple[str, str]] = field(default_factory=dict)
    body: str = ""


_JSON = "application/json"
_PCAP = "application/vnd.tcpdump.pcap"
_NAME = Param("name", "path", "The session name.", required=True)
_FILE = Param("name", "path", "A file name below the output directory (may hold /).", required=True)

#: (METHOD, path) -> what the route does.
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/healthz"): Operation(
        "Liveness check",
        "Answers without the token, and says nothing more than ok.",
        responses={200: ("The service runs.", _JSON)},
    ),
    ("GET", "/"): Operation(
        "The operator page",
        "A static page (no token needed: it holds no data). It asks for the token once, keeps "
        "it in sessionStorage and sends it with every API call.",
        responses={200: ("HTML.", "text/html")},
    ),
    ("GET", "/static/{file}"): Operation(
        "The operator page's scripts and style sheet",
        params=(
            Param("file", "path", "app.js, chart.js, pcap.js, util.js or app.css.", required=True),
        ),
        responses={200: ("The file.", "text/javascript"), 404: ("No such file.", _JSON)},
    ),
    ("GET", "/openapi.json"): Operation(
        "This document", responses={200: ("The OpenAPI document.", _JSON)}
    ),
    ("GET", "/metrics"): Operation(
        "Prometheus metrics",
        "Per session (labels session, source, interface): packets received, accepted, "
        "filtered and written, bytes accepted, drops by reason (queue, kernel, subscriber, "
        "sink), the queue's length and capacity; a flight recorder's held packets and bytes, "
        "evictions, triggers and dumps; the top metrics_top address pairs and endpoints by "
        "bytes (bounded label sets); the build; the process (CPU, memory, open files). Needs "
        "the token unless metrics_auth is false.",
        responses={200: ("Prometheus text format 0.0.4.", "text/plain")},
    ),
    ("GET", "/v1/sessions"): Operation(
        "List the sessions",
        "Running sessions, then stopped ones still remembered, each with its spec and stats.",
        responses={200: ("{sessions: [Session]}.", _JSON)},
    ),
    ("POST", "/v1/sessions"): Operation(
        "Start a session",
        "The body is a [[session]] table of the configuration, as JSON. A malformed filter is "
        "a 400 whose message holds the expression and a caret under the problem.",
        responses={
            201: ("The session, running.", _JSON),
            400: ("A bad spec or filter.", _JSON),
            403: ("A path outside the output directory.", _JSON),
            404: ("No such interface.", _JSON),
            409: ("The name is taken, or the session limit is reached.", _JSON),
            503: ("The capture backend is not installed.", _JSON),
        },
        body="SessionSpec",
    ),
    ("GET", "/v1/sessions/{name}"): Operation(
        "One session",
        responses={200: ("The session.", _JSON), 404: ("No such session.", _JSON)},
    ),
    ("DELETE", "/v1/sessions/{name}"): Operation(
        "Stop a session",
        "Closes its source, drains its queue to every sink, closes its files; answers the "
        "final stats. A stopped session is forgotten.",
        responses={200: ("{name, state, stats}.", _JSON), 404: ("No such session.", _JSON)},
    ),
    ("GET", "/v1/sessions/{name}/stats"): Operation(
        "A session's counters",
        "packets, bytes, dropped, filtered, kernel_dropped, sink_errors, written, queued, "
        "received, and each live stream subscriber's own counters. Cheap enough to poll.",
        responses={
            200: ("{name, state, stats, subscribers}.", _JSON),
            404: ("No such session.", _JSON),
        },
    ),
    ("GET", "/v1/sessions/{name}/pcap"): Operation(
        "A live pcap stream of a running session",
        "Each client has its own filter and bounded queue: a slow client loses only its own "
        "packets, counted in the session's subscriber stats.",
        params=(
            Param("filter", "query", "A filter expression of the client's own."),
            Param("queue", "query", "The client's queue in packets (at most 4096).", "integer"),
        ),
        responses={
            200: ("pcap, nanosecond time stamps, until the session or the client ends.", _PCAP),
            400: ("A bad filter.", _JSON),
            404: ("No running session by that name.", _JSON),
            409: ("The subscriber limit is reached, or the session runs in workers.", _JSON),
        },
    ),
    ("POST", "/v1/sessions/{name}/dump"): Operation(
        "Write what a session's flight recorder holds",
        "Writes the packets its recorder sink holds now (its last seconds, within its bytes) "
        "to a new file below the output directory, named by the recorder's path template "
        "(strftime fields filled with the time now; -1, -2... before the extension when the "
        "name is taken), while capture goes on. The file is then in GET /v1/files.",
        responses={
            201: (
                "{session, name, packets, bytes, first_packet, last_packet, trigger, written}; "
                "Location: the file's URL.",
                _JSON,
            ),
            404: ("No such session.", _JSON),
            409: ("The session has no recorder sink, or is stopped.", _JSON),
            500: ("The file could not be written (the message says why).", _JSON),
        },
    ),
    ("GET", "/v1/sessions/{name}/conversations"): Operation(
        "A session's top conversations and endpoints",
        "Address pairs (ip, IPv4 and IPv6), TCP and UDP 5-tuples and IP endpoints, the top "
        "rows of each by bytes or packets: packets and wire bytes each way, first and last "
        "seen. Each table says how far its rows can be trusted: exact while evictions is 0; "
        "past its capacity a row's true value lies between its figure and figure + error "
        "(error <= max_error <= total / capacity).",
        params=(
            Param("top", "query", "Rows per table, 1 to 1000 (default 20).", "integer"),
            Param("by", "query", "bytes (default) or packets: what rows are ranked by."),
        ),
        responses={
            200: ("{session, top, by, packets, bytes, ip, tcp, udp, endpoints}.", _JSON),
            400: ("A bad top or by.", _JSON),
            404: ("No such session.", _JSON),
            409: ("The session counts no conversations, or runs in workers.", _JSON),
        },
    ),
    ("GET", "/v1/sessions/{name}/series"): Operation(
        "A session's packets and bytes per second",
        "The last minutes (series_seconds, default 600) of packets and wire bytes per "
        "second, in total and per transport protocol (tcp, udp, icmp, icmp6, other). Seconds "
        "are counted from the first packet's time; for a live session the seconds since the "
        "last packet, up to now, are listed as zeros.",
        params=(
            Param("last", "query", "Only the newest seconds, 1 to series_seconds.", "integer"),
        ),
        responses={
            200: (
                "{session, start, interval, packets: [...], bytes: [...], protocols, "
                "protocol_bytes, seconds, late, first_packet, last_packet}.",
                _JSON,
            ),
            400: ("A bad last.", _JSON),
            404: ("No such session.", _JSON),
            409: ("The session keeps no series, or runs in workers.", _JSON),
        },
    ),
    ("GET", "/v1/capture"): Operation(
        "An ad hoc capture, streamed back",
        "Captures on an interface (AF_PACKET) until the duration passes or the client goes.",
        params=(
            Param("interface", "query", "The interface.", required=True),
            Param("filter", "query", "A filter expression."),
            Param("duration", "query", "Seconds (capped by max_duration).", "number"),
            Param("format", "query", "pcap (default) or text."),
            Param("snaplen", "query", "Bytes kept per packet; 0 means 262144.", "integer"),
        ),
        responses={
            200: ("The packets, as pcap or tcpdump-style text lines.", _PCAP),
            400: ("A bad parameter or filter.", _JSON),
            404: ("No such interface.", _JSON),
            409: ("A limit is reached.", _JSON),
        },
    ),
    ("GET", "/v1/files"): Operation(
        "List the files below the output directory",
        "Every regular file (links, FIFOs and devices are left out): its name, the session "
        "whose sinks name it, size, mode and group, capture format and link type, packet "
        "count and first/last packet times (read by capsvc's own reader; a large file is read "
        "across several listings, complete says whether all of it was), and whether a session "
        "is writing it now.",
        params=(Param("session", "query", "Only the files of this session."),),
        responses={200: ("{directory, files: [File]}.", _JSON)},
    ),
    ("GET", "/v1/files/{name}"): Operation(
        "Download a file",
        "One byte range with Range: bytes=START-END (or -SUFFIX), honouring If-Range; a "
        "malformed or multi-range Range gets the whole file. A file being written is served "
        "as far as it is written when the request comes.",
        params=(Param("Range", "header", "bytes=START-END, bytes=START- or bytes=-N."),),
        responses={
            200: ("The file.", _PCAP),
            206: ("The range asked for.", _PCAP),
            403: ("Not a regular file, or outside the output directory.", _JSON),
            404: ("No such file.", _JSON),
            416: ("The range starts past the end of the file.", _JSON),
        },
    ),
    ("DELETE", "/v1/files/{name}"): Operation(
        "Delete a file",
        "Refused while a session writes it: stop the session first.",
        responses={
            200: ("{name, deleted, size}.", _JSON),
            403: ("Not a regular file, or outside the output directory.", _JSON),
            404: ("No such file.", _JSON),
            409: ("A running session is writing it.", _JSON),
        },
    ),
}

#: Routes answered without the token (``/metrics`` too when metrics_auth is false).
PUBLIC = frozenset({"/healthz", "/", "/static/{file}"})

_COMPONENTS: dict[str, Any] = {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "schemas": {
        "Error": {
            "type": "object",
            "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
            "required": ["error", "status"],
        },
        "SessionSpec": {
            "type": "object",
            "description": "A [[session]] table of the configuration (config/capsvc.toml).",
            "required": ["name", "source"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"},
                "source": {
                    "type": "object",
                    "required": ["type"],
                    "description": "Further keys are options of the capture backend "
                    "(buffer_kib: the capture buffer in KiB, as tcpdump -B; afpacket: ring_size, "
                    "block_size, block_timeout_ms, cooked; libpcap: buffer_size, timeout_ms, "
                    "immediate; pfring: cluster, sampling_rate).",
                    "properties": {
                        "type": {"enum": ["afpacket", "libpcap", "pfring", "file"]},
                        "interface": {"type": "string"},
                        "path": {"type": "string", "description": "file sources"},
                        "promisc": {"type": "boolean", "default": True},
                        "direction": {"enum": ["in", "out", "inout"], "default": "inout"},
                    },
                },
                "filter": {"type": "string", "default": ""},
                "snaplen": {"type": "integer", "minimum": 0, "maximum": 262144, "default": 0},
                "queue_size": {"type": "integer", "minimum": 0, "default": 0},
                "sinks": {"type": "array", "items": {"$ref": "#/components/schemas/SinkSpec"}},
                "duration": {"type": "number", "minimum": 0, "default": 0},
                "autostart": {"type": "boolean", "default": True},
                "workers": {"type": "integer", "minimum": 1, "maximum": 64, "default": 1},
                "conversations": {
                    "type": "boolean",
                    "description": "count conversations (default: the service's setting)",
                },
                "series": {
                    "type": "boolean",
                    "description": "keep the I/O series (default: the service's setting)",
                },
            },
        },
        "SinkSpec": {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {
                "type": {"enum": ["pcap", "pcapng", "text", "stats", "recorder"]},
                "path": {
                    "type": "string",
                    "description": "relative to the output directory; for a recorder, the "
                    "strftime template of its dumps' names (.pcapng: pcapng dumps)",
                },
                "rotate_seconds": {"type": "number", "default": 0},
                "rotate_mb": {"type": "number", "default": 0},
                "max_files": {"type": "integer", "default": 0},
                "verbose": {"type": "boolean", "default": False},
                "ascii": {"type": "boolean", "default": False},
                "interval": {"type": "number", "default": 1.0},
                "seconds": {
                    "type": "number",
                    "default": 60,
                    "description": "recorder: seconds held",
                },
                "max_bytes": {
                    "type": "integer",
                    "default": 64 * 2**20,
                    "description": "recorder: bytes held at most (captured bytes + 24 each)",
                },
                "trigger": {
                    "type": "string",
                    "default": "",
                    "description": "recorder: a filter whose match writes a dump",
                },
                "after": {
                    "type": "number",
                    "default": 5,
                    "description": "recorder: seconds held after a trigger",
                },
                "holdoff": {
                    "type": "number",
                    "description": "recorder: seconds matches are ignored after a trigger "
                    "dump (default: seconds)",
                },
                "dump_on_stop": {
                    "type": "boolean",
                    "default": False,
                    "description": "recorder: write what is held when the session stops",
                },
                "nanosecond": {
                    "type": "boolean",
                    "default": True,
                    "description": "pcap: nanosecond time stamps; false writes microseconds",
                },
            },
        },
    },
}


def _fallback(handler: Any) -> Operation:
    doc = inspect.getdoc(handler) or ""
    summary, _, rest = doc.partition("\n")
    return Operation(summary.strip() or "undocumented", rest.strip())


def _operation(method: str, path: str, handler: Any, public: bool) -> dict[str, Any]:
    op = OPERATIONS.get((method, path)) or _fallback(handler)
    params = [
        Param(name, "path", "", required=True)
        for name in _path_params(path)
        if not any(p.name == name and p.where == "path" for p in op.params)
    ]
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{method.lower()}_{path.strip('/').replace('/', '_') or 'index'}".replace(
            "{", ""
        )
        .replace("}", "")
        .replace(".", "_"),
        "parameters": [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "description": p.description,
                "schema": {"type": p.type},
            }
            for p in (*op.params, *params)
        ],
        "responses": {},
    }
    if op.description:
        out["description"] = op.description
    if op.body:
        out["requestBody"] = {
            "required": True,
            "content": {_JSON: {"schema": {"$ref": f"#/components/schemas/{op.body}"}}},
        }
    responses = dict(op.responses) or {200: ("OK.", _JSON)}
    if not public:
        responses.setdefault(401, ("No or wrong bearer token.", _JSON))
    for status, (text, media) in sorted(responses.items()):
        schema = {"$ref": "#/components/schemas/Error"} if status >= 400 else {}
        out["responses"][str(status)] = {
            "description": text,
            "content": {media: {"schema": schema}},
        }
    out["security"] = [] if public else [{"bearer": []}]
    return out


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def document(app: web.Application, *, metrics_auth: bool = True) -> dict[str, Any]:
    """The OpenAPI document of every route of ``app`` (HEAD routes folded into their GET).

    Args:
        app: the application, its routes added.
        metrics_auth: False when /metrics is served without the token.
    """
    from .. import __version__

    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        method = route.method.upper()
        if method == "HEAD":
            continue
        path = route.resource.canonical if route.resource is not None else ""
        public = path in PUBLIC or (path == "/metrics" and not metrics_auth)
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, route.handler, public)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "capsvc",
            "version": __version__,
            "description": "The capture service's HTTP API. Every route but /healthz and the "
            "page's static files needs Authorization: Bearer <token> (the token file is made on "
            "first start). HEAD is answered wherever GET is. Errors are JSON: {error, status}.",
        },
        "paths": dict(sorted(paths.items())),
        "components": _COMPONENTS,
    }


ROUTES = web.RouteTableDef()


def setup(app: web.Application, *, metrics_auth: bool = True) -> None:
    """Add ``GET /openapi.json`` to ``app``."""
    app[_METRICS_AUTH] = metrics_auth
    app.add_routes(ROUTES)


_METRICS_AUTH = web.AppKey("openapi_metrics_auth", bool)


@ROUTES.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """This document."""
    return web.json_response(document(request.app, metrics_auth=request.app[_METRICS_AUTH]))
