"""Serving the PWA at `/`, Leaflet and its marker clusters from their xstatic packages, the
security headers, and the check of the Host header."""

from __future__ import annotations

import errno
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import URL, MutableScopeHeaders
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.exceptions import NotFoundException
from litestar.file_system import BaseLocalFileSystem
from litestar.handlers import BaseRouteHandler
from litestar.response import File
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Message, PathType, Receive, Scope, Send
from litestar.types.file_types import FileInfo

from server.errors import ApiError
from server.settings import Settings


def leaflet_dir() -> Path:
    import xstatic.pkg.leaflet as leaflet

    return Path(leaflet.BASE_DIR)


def markercluster_dir() -> Path:
    import xstatic.pkg.leaflet_markercluster as markercluster

    return Path(markercluster.BASE_DIR)


# Vendor files served under /vendor/NAME/ (the service worker keeps them for offline use).
VENDOR_DIRS = {"leaflet": leaflet_dir, "leaflet-markercluster": markercluster_dir}


def content_security_policy(tile_url: str) -> str:
    """The app's CSP. The tile server is allowed for images (the map's <img> tiles) and for
    connections (the service worker fetches them to keep them for offline use)."""
    tiles = ""
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        host = parts.netloc.replace("a.", "*.", 1) if "{s}" in tile_url else parts.netloc
        tiles = f" {parts.scheme}://{host}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data: blob:{tiles}; media-src 'self' blob:; connect-src 'self'{tiles}; "
        "worker-src 'self'; "
        "manifest-src 'self'; "
        "font-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
        "form-action 'self'"
    )


# Voice notes record from the microphone (SPEC section 13); photos come from the file
# picker's camera, which needs no permission of the page.
PERMISSIONS = "geolocation=(self), camera=(), microphone=(self)"
# Attachments' bytes never change under their hash: their handler says how long to keep them.
BLOBS_PATH = "/api/attachments/blobs/"
# The app's screens loaded on demand (docs/pwa.md): served, never precached.
ON_DEMAND = "/js/online/"


def security_headers_middleware(csp: str) -> Any:
    def middleware(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = MutableScopeHeaders.from_message(message)
                    headers["X-Content-Type-Options"] = "nosniff"
                    headers["Referrer-Policy"] = "no-referrer"
                    headers["X-Frame-Options"] = "DENY"
                    headers["Cross-Origin-Opener-Policy"] = "same-origin"
                    headers["Permissions-Policy"] = PERMISSIONS
                    headers["Content-Security-Policy"] = csp
                    if scope["path"].startswith("/api/") and not scope["path"].startswith(
                        BLOBS_PATH
                    ):
                        headers["Cache-Control"] = "no-store"
                    elif scope["path"].startswith(ON_DEMAND):
                        # Not precached by the worker: revalidated, so a new version of the
                        # app never runs an old copy of one of them.
                        headers["Cache-Control"] = "no-cache"
                await send(message)

            await app(scope, receive, send_with_headers)

        return wrapped

    return middleware


def valid_host_middleware(app: ASGIApp) -> ASGIApp:
    """Answers 400 to a request whose URL cannot be read (RFC 9112: a Host header that is
    not a host and port): Litestar builds the URL from it, for a validation error too, and
    urllib raises ValueError for a port that is not a number up to 65535 (a 500)."""

    async def checked(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            try:
                URL.from_scope(scope)
            except ValueError:
                raise ApiError(
                    400, "malformed", "The Host header is not a host name and port."
                ) from None
        await app(scope, receive, send)

    return checked


def _file(settings: Settings, name: str, media_type: str | None = None) -> File:
    path = settings.pwa_dir / name
    if not path.is_file():
        raise ApiError(404, "not_found", "The app is not installed on this server.")
    return File(path, media_type=media_type, content_disposition_type="inline")


@get("/", include_in_schema=False, operation_id="app_index")
async def index(settings: NamedDependency[Settings]) -> File:
    return _file(settings, "index.html", "text/html")  # Litestar adds "; charset=utf-8" to text/*


@get("/sw.js", include_in_schema=False, operation_id="service_worker", cache_control=None)
async def service_worker(settings: NamedDependency[Settings]) -> Response[bytes]:
    path = settings.pwa_dir / "sw.js"
    if not path.is_file():
        raise ApiError(404, "not_found", "The app is not installed on this server.")
    # Browsers must always revalidate the worker, or an update is never seen.
    return Response(
        path.read_bytes(),
        media_type="text/javascript",  # Litestar adds the charset
        headers={"Cache-Control": "no-cache"},
    )


# The manifest, and one per language the app speaks besides English: the page links the
# one of its language (pwa/js/i18n.js, docs/i18n.md).
MANIFESTS = ("manifest.webmanifest", "manifest.fr.webmanifest")


@get([f"/{name}" for name in MANIFESTS], include_in_schema=False, operation_id="app_manifest")
async def manifest(request: Request[Any, Any, Any], settings: NamedDependency[Settings]) -> File:
    return _file(settings, request.url.path.removeprefix("/"), "application/manifest+json")


# What a served file's path may be: plain names (no `..`, no dotfile, no backslash, no NUL,
# nothing percent-decoded into something odd), not too long for any file system.
_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
MAX_FILE_PATH = 256
# Developer files, which the app never loads: docs/pwa.md's shell rule, shared with
# pwa/tools/stamp_sw.py and tests/unit/test_pwa_static.py.
DEVELOPER_SUFFIXES = (".py", ".md")
DEVELOPER_DIRS = frozenset({"tools", "__pycache__"})


def is_app_file(path: str) -> bool:
    """Whether `path`, under a served folder, may name a file of the app."""
    parts = path.split("/")
    return (
        len(path) <= MAX_FILE_PATH
        and all(_FILE_NAME.fullmatch(part) for part in parts)
        and not DEVELOPER_DIRS.intersection(parts[:-1])
        and not path.endswith(DEVELOPER_SUFFIXES)
    )


def only_app_files(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Checks a static file's path, as it came, before anything touches the disk (the
    folders the files are served under are plain names too)."""
    if not is_app_file(connection.scope["path"].removeprefix("/")):
        raise NotFoundException("There is no such file.")


# What the disk answers for a path that names no file: through a file (ENOTDIR), too long,
# a loop of links, a NUL (ValueError). Litestar turns any OSError but ENOENT into a 500.
_NO_SUCH_FILE = {errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EINVAL}


class AppFiles(BaseLocalFileSystem):
    """The disk as the static routes read it: a path that cannot name a file is a missing
    file (404), not a server error."""

    async def info(self, path: PathType, **kwargs: Any) -> FileInfo:
        try:
            return await super().info(path, **kwargs)
        except ValueError as exc:
            raise FileNotFoundError(str(exc)) from exc
        except OSError as exc:
            if exc.errno in _NO_SUCH_FILE:
                raise FileNotFoundError(exc.errno, exc.strerror) from exc
            raise


def static_routers(pwa_dir: Path) -> list[Any]:
    routers = [
        create_static_files_router(
            path=f"/{folder}",
            directories=[pwa_dir / folder],
            include_in_schema=False,
            name=f"pwa-{folder}",
            guards=[only_app_files],
            file_system=AppFiles(),
        )
        for folder in ("js", "css", "icons")
    ]
    routers.extend(
        create_static_files_router(
            path=f"/vendor/{name}",
            directories=[directory()],
            include_in_schema=False,
            name=name,
            guards=[only_app_files],
            file_system=AppFiles(),
        )
        for name, directory in VENDOR_DIRS.items()
    )
    return routers


PWA_HANDLERS = [index, service_worker, manifest]
