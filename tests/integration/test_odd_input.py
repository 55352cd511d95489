"""Odd input on every route the app serves (issue 14), on SQLite and PostgreSQL: bodies
nested 100,000 deep, odd bytes in paths, developer files, odd headers. The routes are read
from the app itself, so a new route is covered as soon as it exists. Every answer is below
500 and, when it is an error, a JSON error; a refused request changes nothing and logs no
traceback."""

from __future__ import annotations

import logging
from html.parser import HTMLParser
from typing import Any

import msgspec

from server.bodies import MAX_DEPTH
from tests.factories import (
    PASSWORD,
    Login,
    Route,
    app_routes,
    database_state,
    fill_path,
    login_as,
    make_account,
    new_id,
    served_app,
)

ROUTES = app_routes(served_app())
LOGOUT = "/api/auth/logout"
# Handlers that read and decode their body themselves, not through Litestar's `data`.
READS_ITS_BODY = {("POST", "/api/sync/v1")}
# A real file for each static folder, for the routes whose path names a file.
STATIC_FILES = {
    "/js/": "app.js",
    "/css/": "app.css",
    "/icons/": "icon-192.png",
    "/vendor/leaflet/": "leaflet.js",
}


def takes_a_body(route: Route) -> bool:
    return route.takes_data or (route.method, route.path) in READS_ITS_BODY


def path_for(route: Route, value: str) -> str:
    return fill_path(route.path, value)


def valid_path(route: Route, record_id: str) -> str:
    for prefix, name in STATIC_FILES.items():
        if route.path.startswith(prefix):
            return path_for(route, name)
    return path_for(route, record_id)


def is_json_error(response: Any) -> bool:
    if not response.headers.get("content-type", "").startswith("application/json"):
        return False
    body = response.json()
    return isinstance(body, dict) and bool(body.get("error")) and bool(body.get("detail"))


def problem_with(response: Any, method: str) -> str:
    """What is wrong with an answer to odd input, or ''."""
    if response.status_code >= 500:
        return f"answered {response.status_code}: {response.text[:200]}"
    if response.status_code >= 400 and method != "HEAD" and not is_json_error(response):
        return f"answered {response.status_code} without a JSON error: {response.text[:200]}"
    return ""


def tracebacks(records: list[logging.LogRecord]) -> list[str]:
    """Records that tell of an error on the server: none may come from odd input."""
    return [
        f"{r.levelname} {r.name}: {r.getMessage()[:300]}"
        for r in records
        if r.levelno >= logging.ERROR or r.exc_info
    ]


async def fresh_headers(client: Any, who: Login) -> dict[str, str]:
    """A new token for `who`, for a request that may log out the one it carries."""
    response = await client.post(
        "/api/auth/login", json={"username": who.username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


# -- bodies nested too deep ----------------------------------------------------------------

# Deep enough for msgspec to pass the recursion limit (1,000), small enough for the push
# routes' 16 KiB; the 100,000 of the issue once, where 413 (too large) is an answer too.
DEEP = 3_000
DEEP_JSON = b"[" * DEEP + b"]" * DEEP
DEEP_MSGPACK = b"\x91" * DEEP + b"\x90"
HUGE = "json arrays 100,000 deep"


def deep_bodies(record_id: str) -> dict[str, tuple[bytes, str]]:
    """Bodies whose nesting sends msgspec past the recursion limit, as a whole or inside
    a field that is decoded as it comes (a mutation's `fields`, an unknown key)."""
    mutation = {"mid": 1, "table": "accounts", "id": record_id, "op": "upsert", "hlc": [1, 0]}
    sync = {"protocol": 1, "client_id": "deep", "mutations": [{**mutation, "fields": {}}]}
    marker = b'"@deep@"'

    def with_deep(value: Any, deep: bytes, encode: Any) -> bytes:
        return encode(value).replace(encode("@deep@"), deep)

    fields = {**sync, "mutations": [{**mutation, "fields": {"name": "@deep@"}}]}
    unknown = {"protocol": 1, "client_id": "deep", "name": "x", "extra": "@deep@"}
    assert marker in msgspec.json.encode(fields)
    return {
        HUGE: (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        "json arrays": (DEEP_JSON, "application/json"),
        "json objects": (b'{"":' * DEEP + b"1" + b"}" * DEEP, "application/json"),
        "json never closed": (b"[" * DEEP, "application/json"),
        "json in a field": (with_deep(fields, DEEP_JSON, msgspec.json.encode), "application/json"),
        "json in an unknown key": (
            with_deep(unknown, DEEP_JSON, msgspec.json.encode),
            "application/json",
        ),
        "msgpack arrays": (DEEP_MSGPACK, "application/msgpack"),
        "msgpack in a field": (
            with_deep(fields, DEEP_MSGPACK, msgspec.msgpack.encode),
            "application/msgpack",
        ),
    }


async def test_deep_bodies_answer_400_on_every_route(client: Any, caplog: Any) -> None:
    rep = await login_as(client)
    account = await make_account(client, rep)
    bodies = deep_bodies(account["id"])
    routes = [route for route in ROUTES if route.method not in ("GET", "HEAD")]
    assert any(takes_a_body(route) for route in routes)
    failures = []
    for route in routes:
        # A route that takes no body goes on without it: give it an id that names nothing,
        # so that it deletes nothing.
        path = valid_path(route, account["id"] if takes_a_body(route) else new_id())
        for name, (body, media_type) in bodies.items():
            headers = rep.headers
            if route.path == LOGOUT:
                headers = await fresh_headers(client, rep)
            before = await database_state()
            response = await client.request(
                route.method, path, content=body, headers={**headers, "Content-Type": media_type}
            )
            problem = problem_with(response, route.method)
            if not problem and takes_a_body(route):
                detail = response.json()["detail"]
                if name == HUGE and response.status_code == 413:
                    pass
                elif response.status_code != 400 or response.json()["error"] != "malformed":
                    problem = f"answered {response.status_code}, not 400: {response.text[:200]}"
                elif name.startswith("json") and str(MAX_DEPTH) not in detail:
                    problem = f"not refused for its depth: {detail}"
                elif await database_state() != before:
                    problem = "changed the database"
            if problem:
                failures.append(f"{route.method} {route.path} {name}: {problem}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)
    assert not tracebacks(caplog.records)


# -- pages and their scripts ---------------------------------------------------------------

# The pages Litestar renders by default, each of which loaded scripts from a CDN.
DOCUMENTATION_PAGES = ["swagger", "redoc", "elements", "rapidoc", "scalar", "stoplight"]


class References(HTMLParser):
    """Every URL an HTML page loads or links to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "action", "data", "poster", "srcset") and value:
                self.urls.append(value)


def script_sources(csp: str) -> list[str]:
    for directive in csp.split(";"):
        name, *sources = directive.split()
        if name == "script-src":
            return sources
    return []


async def test_no_page_loads_a_script_from_elsewhere(client: Any) -> None:
    rep = await login_as(client)
    account = await make_account(client, rep)
    pages = [valid_path(r, account["id"]) for r in ROUTES if r.method == "GET"]
    pages += [f"/schema/{page}" for page in DOCUMENTATION_PAGES]
    html = 0
    for path in pages:
        response = await client.get(path, headers=rep.headers)
        assert response.status_code < 500, path
        csp = response.headers.get("content-security-policy", "")
        assert script_sources(csp) == ["'self'"], f"{path}: {csp!r}"
        if response.headers.get("content-type", "").startswith("text/html"):
            html += 1
            page = References()
            page.feed(response.text)
            outside = [url for url in page.urls if not url.startswith(("/", "#"))]
            outside += [url for url in page.urls if url.startswith("//")]
            assert not outside, f"{path} refers outside the app: {outside}"
    assert html >= 1  # the app's own page, at least


async def test_the_api_is_described_by_its_document_only(client: Any) -> None:
    document = await client.get("/schema/openapi.json")
    assert document.status_code == 200
    assert document.json()["openapi"].startswith("3.")
    assert "/api/sync/v1" in document.json()["paths"]
    for page in DOCUMENTATION_PAGES:
        response = await client.get(f"/schema/{page}")
        assert response.status_code == 404, page
        assert is_json_error(response), page
