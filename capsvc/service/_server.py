"""Running the service with its HTTP API: listening, signals, reload, dropping root.

Thin IO module. SIGTERM and SIGINT stop accepting requests, stop every session (sources closed,
queues drained to every sink, files closed) and return 0; SIGHUP reloads the config file (read
in a worker thread; a file that is not valid is logged and the running config kept; the
directories, the files' mode and group and ``metrics_auth`` change only at a restart). The
listener bounds what clients can hold: at most ``max_connections`` connections (more are
answered 503 and closed), each closed when it sends no whole request for ``idle_timeout``
seconds (an idle keep-alive connection, or one trickling its headers).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import json
import logging
import os
import secrets
import signal
import stat
import sys
from dataclasses import replace
from typing import IO, Any

from aiohttp import web

from ._config import ConfigError, ServiceConfig, ServiceSettings, load_config
from ._http import TokenRef, build_app
from ._service import CaptureService

__all__ = ["LimitedSite", "load_token", "make_runner", "serve", "start_site"]

log = logging.getLogger("capsvc.service")

#: The interpreter's thread switch interval while serving (seconds; Python's default is 0.005).
API_SWITCH_INTERVAL = 0.001
#: Seconds aiohttp gives open requests to end once the service has stopped.
SHUTDOWN_TIMEOUT = 5.0


def load_token(path: str) -> str:
    """Read the bearer token, generating one (0600, 256 random bits) when the file is missing.

    Args:
        path: the token file.

    Returns:
        The token, whitespace stripped.

    Raises:
        ConfigError: the file cannot be read or created, or is empty.
    """
    try:
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(path, "service.token_file", f"cannot create: {exc.strerror}") from exc
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        log.warning("generated a new API token in %s", path)
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
        mode = os.stat(path).st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "service.token_file", f"cannot read: {exc}") from exc
    if not token:
        raise ConfigError(path, "service.token_file", "the token file is empty")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("token file %s is readable by others; chmod 600 it", path)
    return token


async def serve(
    config_path: str,
    *,
    user: str | None = None,
    config: ServiceConfig | None = None,
    out: IO[str] | None = None,
) -> int:
    """Run the service until SIGTERM or SIGINT.

    Prints ``capsvc: listening on URL`` once it accepts requests (after dropping root) and,
    after stopping, one JSON line per session with its final stats
    (``{"session": NAME, "stats": {...}}``).

    Args:
        config_path: the TOML file (read again on SIGHUP).
        user: drop root to this user once the autostart sessions' sockets are open.
        config: the already loaded config, or None to load ``config_path``.
        out: where the lines above go; default standard error.

    Returns:
        0 after a clean stop.

    Raises:
        ConfigError: the config or token file is bad (nothing was started).
        capsvc.CapsvcError, OSError: a session or the listening socket could not be opened
            (everything started was stopped again).
    """
    stream = out or sys.stderr
    config = config or load_config(config_path)
    settings = config.service
    token = TokenRef(load_token(settings.token_file))
    service = CaptureService(config, user=user)
    await service.start()
    runner = make_runner(build_app(service, token, metrics_auth=settings.metrics_auth), settings)
    try:
        await runner.setup()
        url = await start_site(runner, settings)
    except BaseException:
        await service.stop()
        await runner.cleanup()
        raise
    if user is not None:
        from ._privileges import drop_privileges

        # The files and directories the sessions opened so far (rotation makes more of them
        # later, as the user) go to the user too, as tcpdump -Z does with its file.
        owned = [settings.token_file, settings.output_dir]
        for top, dirs, files in os.walk(settings.output_dir):
            owned += [os.path.join(top, name) for name in (*dirs, *files)]
        if settings.unix_socket:
            owned.append(settings.unix_socket)
        try:
            drop_privileges(user, chown=owned, group=service.files.group)
        except BaseException:
            await service.stop()
            await runner.cleanup()
            raise
    # Everything allocated so far lives as long as the service: keep it out of the collector's
    # full passes, which would otherwise pause the event loop for a long time under load.
    gc.collect()
    gc.freeze()
    # The capture's threads hold the GIL in long stretches; handing it over every 1 ms instead
    # of 5 keeps the API answering within milliseconds while a capture runs flat out.
    sys.setswitchinterval(API_SWITCH_INTERVAL)

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    reloads: set[asyncio.Task[None]] = set()

    def on_hup() -> None:
        task = asyncio.ensure_future(_reload(service, token, config_path))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    # Announced only once the signals are ours: a SIGHUP or SIGTERM sent on seeing this line
    # reloads or drains, never meets the default action that kills the process.
    print(f"capsvc: listening on {url}", file=stream, flush=True)
    try:
        await stopping.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        for site in list(runner.sites):
            # Stop listening now; open streams end below, when their sessions stop.
            listener = getattr(site, "_server", None)
            if listener is not None:
                listener.close()
        for task in list(reloads):
            with contextlib.suppress(Exception):
                await task
        final = await service.stop()
        for name, stats in final.items():
            print(json.dumps({"session": name, "stats": stats._asdict()}), file=stream, flush=True)
        await runner.cleanup()
        if settings.unix_socket:
            with contextlib.suppress(OSError):
                os.unlink(settings.unix_socket)
    return 0


class _BadRequestFilter(logging.Filter):
    """aiohttp logs a request its parser cannot read (a client's mistake, answered 400) as an
    error with a traceback: any client could fill the log. Such a record becomes one line at
    INFO; a failure of the server itself keeps its level and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 400) < 500:
            what = record.getMessage()
            record.msg = "%s: %s"
            record.args = (what, " ".join(str(exc.message).split())[:200])
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
            return logging.getLogger("aiohttp.server").isEnabledFor(logging.INFO)
        return True


_BAD_REQUESTS = _BadRequestFilter()


def make_runner(app: web.Application, settings: ServiceSettings) -> web.AppRunner:
    """The aiohttp runner with the service's limits: idle connections (and requests whose
    headers do not arrive) are closed after ``idle_timeout`` seconds. Requests the HTTP parser
    refuses are logged as one line, not a traceback."""
    server_log = logging.getLogger("aiohttp.server")
    if _BAD_REQUESTS not in server_log.filters:
        server_log.addFilter(_BAD_REQUESTS)
    return web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        keepalive_timeout=settings.idle_timeout,
        max_line_size=8190,
        max_field_size=8190,
        max_headers=64,
    )


_REFUSED_BODY = json.dumps(
    {"error": "too many connections; try again later", "status": 503}
).encode()
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\nRetry-After: 1\r\n\r\n" % len(_REFUSED_BODY)
) + _REFUSED_BODY


class _Refused(asyncio.Protocol):
    """Answers a connection over the limit with 503 and closes it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_REFUSED)
        transport.close()


class LimitedSite(web.BaseSite):
    """A listening site that lets at most ``limit`` connections be open at once.

    Args:
        runner: the (set up) runner.
        listen: ``loop.create_server``-like coroutine function taking the protocol factory.
        name: the site's URL, for aiohttp's listing.
        limit: the most connections open at once (``max_connections``).
    """

    def __init__(
        self,
        runner: web.AppRunner,
        listen: Any,
        name: str,
        limit: int,
    ) -> None:
        super().__init__(runner)
        self._listen = listen
        self._name = name
        self._limit = limit

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        limit = self._limit

        def protocol() -> asyncio.BaseProtocol:
            if len(server.connections) >= limit:
                return _Refused()
            return server()

        self._server = await self._listen(protocol)


async def start_site(runner: web.AppRunner, settings: ServiceSettings) -> str:
    """Start listening where ``settings`` say (TCP or a unix socket made 0600); return the URL.

    Raises:
        OSError: the address cannot be bound.
    """
    loop = asyncio.get_running_loop()
    limit = settings.max_connections
    if settings.unix_socket:
        path = settings.unix_socket
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)  # a stale socket of an earlier run
        old = os.umask(0o177)  # created 0600 from the start, never briefly wider
        try:
            site: web.BaseSite = LimitedSite(
                runner,
                lambda factory: loop.create_unix_server(factory, path),
                f"unix:{path}",
                limit,
            )
            await site.start()
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        return f"unix:{path}"
    host, port = settings.host_port
    with contextlib.suppress(ValueError):
        if not ipaddress.ip_address(host).is_loopback:
            log.warning("listening on %s: reachable beyond this machine", host)
    site = LimitedSite(
        runner,
        lambda factory: loop.create_server(factory, host, port, reuse_address=True),
        f"http://{host}:{port}",
        limit,
    )
    await site.start()
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname() if sockets else (host, port)
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    return f"http://{shown}:{bound[1]}"


async def _reload(service: CaptureService, token: TokenRef, config_path: str) -> None:
    """SIGHUP: apply the config file again. Never raises: whatever goes wrong is logged and
    the service goes on with what it runs."""
    try:
        # Reading and parsing (filters included) in a worker thread: the API keeps answering.
        config = await asyncio.to_thread(load_config, config_path)
        new_token = await asyncio.to_thread(load_token, config.service.token_file)
    except ConfigError as exc:
        log.error("reload refused, keeping the running config: %s", exc)
        return
    except Exception as exc:  # a bug must not kill the service, nor go unreported
        log.error("reload failed, keeping the running config: %r", exc)
        return
    token.value = new_token
    old = service.config.service
    if config.service.listen != old.listen:
        log.warning("reload: the listen address changes only when the service restarts")
    fixed = ("output_dir", "input_dir", "file_mode", "file_group", "metrics_auth")
    changed = [k for k in fixed if getattr(config.service, k) != getattr(old, k)]
    if changed:
        log.warning("reload: %s change only when the service restarts", ", ".join(changed))
        config = replace(
            config, service=replace(config.service, **{k: getattr(old, k) for k in fixed})
        )
    try:
        started, stopped = await service.reload(config)
    except Exception as exc:
        log.error("reload failed: %r", exc)
        return
    log.warning(
        "reloaded %s: started %s, stopped %s", config_path, started or "none", stopped or "none"
    )
