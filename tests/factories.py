"""Factories: users with tokens, and records made through the API."""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from server import db
from server.auth.services import create_user
from server.core.fields import CHILD_TABLES

PASSWORD = "correct-horse-9"
_counter = itertools.count(1)


@dataclass
class Login:
    user_id: str
    username: str
    role: str
    team_id: str
    token: str
    headers: dict[str, str] = field(default_factory=dict)


async def login_as(client: Any, role: str = "rep", team: str = "north", name: str = "") -> Login:
    username = name or f"{role}{next(_counter)}-{uuid.uuid4().hex[:4]}"
    await create_user(username, PASSWORD, role, team)
    response = await client.post(
        "/api/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    token = body["token"]
    user = body["user"]
    return Login(
        user_id=user["id"],
        username=username,
        role=role,
        team_id=user["team_id"],
        token=token,
        headers={"Authorization": f"Bearer {token}"},
    )


async def make_account(client: Any, who: Login, **fields: Any) -> dict[str, Any]:
    body = {"name": f"Account {next(_counter)}", **fields}
    response = await client.post("/api/accounts", json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def make_record(client: Any, who: Login, table: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(f"/api/{table}", json=fields, headers=who.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def new_id() -> str:
    return str(uuid.uuid4())


# A valid create body for each record table that hangs off an account (the account's id
# filled in by `child_fields`).
CHILD_BODIES: dict[str, dict[str, Any]] = {
    "contacts": {"name": "Ada Contact", "title": "Buyer", "email": "ada@example.com"},
    "visits": {"started_at": "2026-05-01T09:30:00+02:00", "outcome": "met", "summary": "Met"},
    "notes": {"body": "Wants a quote"},
    "tasks": {"title": "Call back", "due_at": "2026-05-02T10:00:00Z"},
    "deals": {"title": "Spring order", "amount": 1200.0, "currency": "EUR"},
    "attachments": {"sha256": "5e" * 32, "media_type": "image/jpeg", "bytes": 48_213},
}


def child_fields(table: str, account_id: str | None, **fields: Any) -> dict[str, Any]:
    return {"account_id": account_id, **CHILD_BODIES[table], **fields}


async def make_child(
    client: Any, who: Login, table: str, account_id: str | None, **fields: Any
) -> dict[str, Any]:
    return await make_record(client, who, table, **child_fields(table, account_id, **fields))


COUNTED = ["accounts", *CHILD_TABLES, "conflicts", "sync_changes", "users", "teams"]


async def database_state() -> list[dict[str, Any]]:
    """What a rejected request must leave alone. Every record write takes a new seq (and
    moves the clock) in sync_meta; the counts catch anything written beside that path."""
    counts = ", ".join(f"(SELECT COUNT(*) FROM {t}) AS {t}" for t in COUNTED)
    return [
        *await db.fetch("SELECT key, value FROM sync_meta ORDER BY key"),
        *await db.fetch(f"SELECT {counts}"),
    ]


@dataclass(frozen=True)
class Route:
    """A method and path the app serves, and the names its handler takes."""

    method: str
    path: str
    parameters: frozenset[str]

    @property
    def takes_data(self) -> bool:
        """Whether Litestar decodes a body for the handler (its `data` or `body`)."""
        return bool({"data", "body"} & self.parameters)


def app_routes(app: Any) -> list[Route]:
    """Every route the app serves (OPTIONS aside), /api/ or not, read from the Litestar app
    itself so that a new route is covered by the tests that walk this list."""
    routes = []
    for route in app.routes:
        for method, handler in getattr(route, "route_handler_map", {}).items():
            if method == "OPTIONS":
                continue
            handler = handler[0] if isinstance(handler, tuple) else handler
            parameters = frozenset(handler.parsed_fn_signature.parameters)
            routes.append(Route(method, route.path, parameters))
    return sorted(routes, key=lambda route: (route.path, route.method))


def api_routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) the app serves under /api/, read from the Litestar app itself so
    that a new route is covered by the tests that walk this list."""
    pairs = set()
    for route in app.routes:
        if not route.path.startswith("/api/"):
            continue
        for method in getattr(route, "methods", ()):
            if method not in ("OPTIONS", "HEAD"):
                pairs.add((method, route.path))
    return sorted(pairs, key=lambda pair: (pair[1], pair[0]))


def fill_path(path: str, record_id: str) -> str:
    """A route's path with every path parameter set to `record_id`."""
    return re.sub(r"\{[^}]+\}", record_id, path)


def served_app() -> Any:
    """An app built the way `fieldcrm serve` builds it, to read its routes. Call it at
    import (collection) time: building an app points the process's database engine at its
    settings, which the `client` fixture then points at the test's database."""
    from server.app import create_app
    from server.settings import DatabaseConfig, Settings

    never_opened = DatabaseConfig(engine="sqlite", path="/nonexistent/fieldcrm-routes.sqlite3")
    return create_app(Settings(database=never_opened), run_migrations=False)


def served_api_routes() -> list[tuple[str, str]]:
    """`api_routes` of the app `fieldcrm serve` builds (see `served_app`)."""
    return api_routes(served_app())


def photo(seed: int = 0, size: tuple[int, int] = (64, 48), kind: str = "JPEG") -> bytes:
    """A small real image (JPEG, PNG or WEBP), different for each seed."""
    from PIL import Image

    image = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    image.putpixel((seed % size[0], 0), (255 - seed % 256, 0, 0))
    out = io.BytesIO()
    image.save(out, kind)
    return out.getvalue()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def make_attachment(
    client: Any, who: Login, data: bytes, media_type: str = "image/jpeg", **fields: Any
) -> dict[str, Any]:
    """An attachments row for `data` (not uploaded)."""
    body = {"sha256": sha256_of(data), "media_type": media_type, "bytes": len(data), **fields}
    return await make_record(client, who, "attachments", **body)


async def put_blob(
    client: Any, who: Login, data: bytes, media_type: str = "image/jpeg", sha256: str = ""
) -> Any:
    return await client.put(
        f"/api/attachments/blobs/{sha256 or sha256_of(data)}",
        content=data,
        headers={**who.headers, "Content-Type": media_type},
    )
