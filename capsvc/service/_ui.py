"""The operator page: a static shell (HTML, JS, CSS shipped in the package) served at ``/``.

Thin IO module. The shell holds no data and is the only thing served without the bearer token
(with ``/healthz``): the page asks for the token, keeps it in the browser's sessionStorage and
sends it with every API call. The files are read from the package once and kept; they are sent
with a strict Content-Security-Policy (scripts and styles from this origin only, no inline
code), so that nothing the API returns can run as script in the page.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources

from aiohttp import web

__all__ = ["ASSETS", "ROUTES", "SECURITY_HEADERS", "is_shell", "setup"]

#: The static files and their media types (nothing else below /static/ is served).
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "pcap.js": "text/javascript; charset=utf-8",
    "util.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
#: Sent with every file of the shell.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidate every time (cheap: ETag), so a new version of the page is never stale.
    "Cache-Control": "no-cache",
}

ROUTES = web.RouteTableDef()


def is_shell(path: str) -> bool:
    """True for the paths of the static shell, served without the token."""
    return path == "/" or (path.startswith("/static/") and path[8:] in ASSETS)


def setup(app: web.Application) -> None:
    """Add the page's routes to ``app``."""
    app.add_routes(ROUTES)


@functools.cache
def _asset(name: str) -> tuple[bytes, str]:
    """The file's bytes and a strong ETag (read from the package once)."""
    data = (importlib.resources.files(__package__) / "static" / name).read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _serve(request: web.Request, name: str) -> web.Response:
    data, etag = _asset(name)
    headers = {**SECURITY_HEADERS, "ETag": etag}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = ASSETS[name]
    return web.Response(body=data, headers=headers)


@ROUTES.get("/")
async def index(request: web.Request) -> web.Response:
    """The operator page (no token needed: it holds no data)."""
    return _serve(request, "index.html")


@ROUTES.get("/static/{file}")
async def static(request: web.Request) -> web.Response:
    """The page's scripts and style sheet."""
    name = request.match_info["file"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return _serve(request, name)
