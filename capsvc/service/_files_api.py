"""The files API: list, download (with Range) and delete what is below the output directory.

Thin IO module over ``_catalog``. Every name is resolved by ``capsvc._files.Directory`` below
the service's output directory: no symbolic link is followed, only regular files are served or
deleted (a FIFO, device or link is a 403), and a name with ``..`` or an absolute one never
leaves the directory. A file some session is writing (the kernel says it is open for writing
by the service or one of its workers) can be listed and downloaded, as far as it is written,
but not deleted (409).

- ``GET /v1/files[?session=NAME]``: every regular file, with its session (the one whose sink
  paths name it), size, mode, group, capture format, link type, packet count and first/last
  packet times.
- ``GET /v1/files/{name}``: the file (``Range: bytes=`` for one range, ``If-Range``), typed
  ``application/vnd.tcpdump.pcap`` or ``application/x-pcapng`` from its magic number.
- ``DELETE /v1/files/{name}``: remove it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import grp
import os
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from .._errors import ConflictError, NotFoundError
from .._files import Directory
from ._catalog import SCAN_BUDGET, Catalog, FileSummary, capture_format, open_for_writing
from ._catalog import service_pids as _pids
from ._config import SessionSpec
from ._outputs import worker_path
from ._service import CaptureService

__all__ = ["CONTENT_TYPES", "FILES_KEY", "ROUTES", "FilesState", "session_patterns", "setup"]

#: Media type of each capture format (pcap's is IANA-registered; pcapng's is the one in use).
CONTENT_TYPES = {"pcap": "application/vnd.tcpdump.pcap", "pcapng": "application/x-pcapng"}
#: Bytes per read while sending a file.
SEND_CHUNK = 1 << 18


#: Sessions remembered (name and file pattern) after the service has forgotten them.
OWNERS_KEPT = 1024


class FilesState:
    """What the files API keeps: the service, the catalogue, and which session wrote what.

    A session started over the API and stopped again is forgotten by the service, but its
    files stay: the (name, file pattern) of every session seen is remembered (the last
    ``OWNERS_KEPT``), from the moment any response is prepared while it exists (the answer to
    the POST that started it, at the latest).

    Args:
        service: the running service.
    """

    def __init__(self, service: CaptureService) -> None:
        self.service = service
        self.catalog = Catalog()
        self._seen: dict[tuple[str, str], tuple[str, re.Pattern[str]]] = {}

    def remember(self) -> None:
        """Note the sessions the service has now (cheap: called for every response)."""
        for managed in self.service.sessions():
            pattern = session_patterns(managed.spec)
            if pattern is None:
                continue
            key = (managed.name, pattern.pattern)
            self._seen.pop(key, None)
            self._seen[key] = (managed.name, pattern)  # most recent last
        while len(self._seen) > OWNERS_KEPT:
            del self._seen[next(iter(self._seen))]

    def owners(self) -> list[tuple[str, re.Pattern[str]]]:
        """(session name, pattern), best first: running sessions, stopped ones the service
        still lists, the config's, then those remembered (the most recent first)."""
        self.remember()
        out: list[tuple[str, re.Pattern[str]]] = []
        for spec in [m.spec for m in self.service.sessions()] + list(self.service.config.sessions):
            pattern = session_patterns(spec)
            if pattern is not None:
                out.append((spec.name, pattern))
        out += reversed(self._seen.values())
        return out

    def directory(self) -> Directory:
        """The output directory, opened (the caller closes it).

        Raises:
            NotFoundError: it does not exist (yet).
        """
        try:
            return Directory(self.service.output_dir)
        except FileNotFoundError:
            raise NotFoundError(f"output directory {self.service.output_dir} missing") from None


#: Where the application keeps the files API's state.
FILES_KEY = web.AppKey("files", FilesState)

ROUTES = web.RouteTableDef()


def setup(app: web.Application, service: CaptureService) -> None:
    """Add the files API's routes and state to ``app``."""
    state = FilesState(service)
    app[FILES_KEY] = state

    async def remember(_request: web.Request, _response: web.StreamResponse) -> None:
        state.remember()

    app.on_response_prepare.append(remember)
    app.add_routes(ROUTES)


# -- which session a file belongs to --------------------------------------------------------


def _template_regex(template: str, *, strftime: bool, counter: bool) -> str:
    out: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if strftime and ch == "%" and i + 1 < len(template):
            nxt = template[i + 1]
            out.append("%" if nxt == "%" else ".+?")
            i += 2
            continue
        out.append(re.escape(ch))
        i += 1
    return "".join(out) + (r"\d*" if counter else "")


def session_patterns(spec: SessionSpec) -> re.Pattern[str] | None:
    """A pattern the names of every file ``spec``'s sinks write fully match.

    strftime fields (time rotation, a recorder's dumps) match anything, a size-rotation counter
    any digits, a recorder's ``-N`` before the extension, and a session of N workers writes
    ``NAME.workerK.EXT`` for each K. None when it writes no file.
    """
    parts: list[str] = []
    for sink in spec.sinks:
        if not sink.path:
            continue
        templates = [sink.path]
        if spec.workers > 1:
            templates = [worker_path(sink.path, k) for k in range(spec.workers)]
        if sink.type == "recorder":
            # A dump's name is the template filled with its time, -N before the extension
            # when that name was taken.
            stem, dot, ext = sink.path.rpartition(".")
            if not dot or "/" in ext:
                stem, dot, ext = sink.path, "", ""
            regex = _template_regex(stem, strftime=True, counter=False) + r"(?:-\d+)?"
            parts.append(regex + re.escape(dot + ext))
            continue
        counter = bool(sink.rotate_mb or sink.max_files)
        parts += [
            _template_regex(t, strftime=bool(sink.rotate_seconds), counter=counter)
            for t in templates
        ]
    return re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None


def _session_of(name: str, owners: Iterable[tuple[str, re.Pattern[str]]]) -> str | None:
    return next((session for session, p in owners if p.fullmatch(name)), None)


# -- listing ---------------------------------------------------------------------------------


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _seconds(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e9


def _describe(f: FileSummary, session: str | None, writing: bool) -> dict[str, Any]:
    return {
        "name": f.name,
        "session": session,
        "size": f.size,
        "modified": f.modified,
        "mode": f"{f.mode:04o}",
        "group": _group_name(f.gid),
        "format": f.format,
        "linktype": None if f.linktype is None else f.linktype.name.lower(),
        "packets": f.packets,
        "first_packet": _seconds(f.first_ns),
        "last_packet": _seconds(f.last_ns),
        "writing": writing,
        "complete": f.complete,
        "error": f.error,
    }


def _scan(state: FilesState) -> tuple[list[FileSummary], set[tuple[int, int]]]:
    writing = open_for_writing(_pids())
    try:
        directory = state.directory()
    except NotFoundError:
        return [], writing
    with directory:
        return state.catalog.scan(directory, writing=writing, budget=SCAN_BUDGET), writing


@ROUTES.get("/v1/files")
async def list_files(request: web.Request) -> web.Response:
    """List the files below the output directory."""
    state = request.app[FILES_KEY]
    only = request.query.get("session")
    found, writing = await asyncio.to_thread(_scan, state)
    owners = state.owners()
    files = []
    for f in found:
        session = _session_of(f.name, owners)
        if only is None or session == only:
            files.append(_describe(f, session, (f.device, f.inode) in writing))
    return web.json_response({"directory": state.service.output_dir, "files": files})


# -- download --------------------------------------------------------------------------------


def _open(state: FilesState, name: str) -> tuple[int, os.stat_result]:
    with state.directory() as directory:
        try:
            fd = directory.open_read(name)
        except FileNotFoundError:
            raise NotFoundError(f"no file named {name!r} in the output directory") from None
    return fd, os.fstat(fd)


def _etag(info: os.stat_result) -> str:
    return f'"{info.st_ino:x}-{info.st_size:x}-{info.st_mtime_ns:x}"'


def _wanted_range(request: web.Request, etag: str, modified: str) -> slice | None:
    """The one byte range asked for, or None for the whole file.

    A malformed or multi-range ``Range`` is ignored (the whole file, as RFC 9110 allows), and so
    is any ``Range`` whose ``If-Range`` no longer matches the file.
    """
    if "Range" not in request.headers:
        return None
    condition = request.headers.get("If-Range")
    if condition is not None and condition not in (etag, modified):
        return None
    try:
        wanted = request.http_range
    except ValueError:
        return None
    if wanted.start is None and wanted.stop is None:
        return None
    return wanted


def _disposition(name: str) -> str:
    """``attachment`` with the base name: plain ASCII in ``filename`` (quotes, backslashes and
    control characters replaced), the exact name in ``filename*`` (RFC 6266)."""
    base = os.path.basename(name)
    plain = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in base)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{urllib.parse.quote(base)}"


@ROUTES.get(r"/v1/files/{name:[\s\S]+}")  # any name, a newline too
async def download_file(request: web.Request) -> web.StreamResponse:
    """Download a file (one byte range with ``Range``)."""
    state = request.app[FILES_KEY]
    fd, info = await asyncio.to_thread(_open, state, request.match_info["name"])
    try:
        size = info.st_size
        etag = _etag(info)
        modified = email.utils.formatdate(info.st_mtime, usegmt=True)
        kind = capture_format(os.pread(fd, 4, 0))
        headers = {
            "Content-Type": CONTENT_TYPES.get(kind or "", "application/octet-stream"),
            "Content-Disposition": _disposition(request.match_info["name"]),
            "Accept-Ranges": "bytes",
            "ETag": etag,
            "Last-Modified": modified,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
        wanted = _wanted_range(request, etag, modified)
        start, stop, status = 0, size, 200
        if wanted is not None:
            start, stop, _ = wanted.indices(size)  # bytes=-N is slice(-N, None): the last N
            if start >= size or start >= stop:
                return web.json_response(
                    {"error": f"range not satisfiable (the file has {size} bytes)", "status": 416},
                    status=416,
                    headers={"Content-Range": f"bytes */{size}"},
                )
            status = 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = stop - start
        await resp.prepare(request)
        if request.method != "HEAD":
            await _send(fd, start, stop, resp)
        return resp
    finally:
        os.close(fd)


async def _send(fd: int, start: int, stop: int, resp: web.StreamResponse) -> None:
    """Send bytes ``start:stop`` of ``fd``; a file that shrank ends the body early (the client
    sees fewer bytes than Content-Length said)."""
    offset = start
    with contextlib.suppress(ConnectionError):
        while offset < stop:
            chunk = await asyncio.to_thread(os.pread, fd, min(SEND_CHUNK, stop - offset), offset)
            if not chunk:
                break
            await resp.write(chunk)
            offset += len(chunk)
        await resp.write_eof()


# -- delete ----------------------------------------------------------------------------------


def _delete(state: FilesState, name: str, owners: list[tuple[str, re.Pattern[str]]]) -> int:
    with state.directory() as directory:
        try:
            info = directory.stat(name)
        except FileNotFoundError:
            raise NotFoundError(f"no file named {name!r} in the output directory") from None
        if (info.st_dev, info.st_ino) in open_for_writing(_pids()):
            owner = _session_of(name, owners)
            by = f"session {owner!r}" if owner else "a running session"
            raise ConflictError(
                f"{name!r} is being written by {by}; stop the session first "
                "(DELETE /v1/sessions/NAME), or delete its finished files"
            )
        directory.unlink(name)  # refuses a link or anything not a regular file (403)
    state.catalog.forget(name)
    return info.st_size


@ROUTES.delete(r"/v1/files/{name:[\s\S]+}")
async def delete_file(request: web.Request) -> web.Response:
    """Delete a file no session is writing."""
    name = request.match_info["name"]
    state = request.app[FILES_KEY]
    size = await asyncio.to_thread(_delete, state, name, state.owners())
    return web.json_response({"name": name, "deleted": True, "size": size})
