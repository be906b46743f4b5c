"""The capture service: named sessions from a TOML config, an HTTP API, metrics, workers.

``CaptureService`` runs embedded in any asyncio application (``await start()``,
``await start_session(spec)``, ``await stop_session(name)``, ``sessions()``, ``await stop()``);
``capsvc serve`` adds the HTTP API, signals and privilege dropping. config/capsvc.toml documents
every configuration key. The API (JSON; every route but /healthz needs
``Authorization: Bearer <token>``):

- ``GET /v1/sessions``, ``POST /v1/sessions`` (a ``[[session]]`` table as JSON),
  ``GET /v1/sessions/NAME``, ``GET /v1/sessions/NAME/stats``, ``DELETE /v1/sessions/NAME``
  (stop, drain, final stats);
- ``GET /v1/sessions/NAME/pcap[?filter=EXPR&queue=N]``: a live pcap stream, its own filter and
  bounded queue per client (a slow client loses only its own packets, counted in the stats);
- ``GET /v1/capture?interface=IF[&filter=EXPR&duration=S&format=pcap|text&snaplen=N]``: an ad
  hoc capture streamed back, ended by the duration (capped by ``max_duration``) or the client;
- ``GET /v1/files``, ``GET /v1/files/NAME`` (Range), ``DELETE /v1/files/NAME``: the files below
  the output directory (``_files_api``);
- ``POST /v1/sessions/NAME/dump`` (what its flight recorder holds, to a new file),
  ``GET /v1/sessions/NAME/conversations?top=20&by=bytes|packets`` and
  ``GET /v1/sessions/NAME/series[?last=S]`` (``_analysis_api``);
- ``GET /metrics`` (Prometheus text, one ``session`` label per session), ``GET /healthz``,
  ``GET /openapi.json`` (every route, from the route table);
- ``GET /``: the operator page (``_ui``, ``static/``), served without the token.

Errors: 400 bad spec, filter (caret message) or query value, 401 token, 403 path outside the
output directory, 404 unknown session or interface, 409 name taken, limit reached, or a session
without the recorder, conversations or series asked about, 503 backend missing.
"""

from .._errors import ConfigError, ConflictError, NotFoundError, PathOutsideError, ServiceError
from ._config import (
    ServiceConfig,
    ServiceSettings,
    SessionSpec,
    SinkSpec,
    SourceSpec,
    load_config,
    parse_config,
    parse_session_spec,
)
from ._managed import ServiceSession
from ._service import CaptureService

__all__ = [
    "CaptureService",
    "ConfigError",
    "ConflictError",
    "NotFoundError",
    "PathOutsideError",
    "ServiceConfig",
    "ServiceError",
    "ServiceSession",
    "ServiceSettings",
    "SessionSpec",
    "SinkSpec",
    "SourceSpec",
    "load_config",
    "parse_config",
    "parse_session_spec",
]
