"""Logging in, bearer tokens and password hashes, over HTTP on both engines (the login
throttle: test_login_throttle.py)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

from server import db
from server.auth.passwords import Cost, hash_password, parse_cost, verify_password
from server.auth.services import create_user, token_digest
from tests.factories import (
    PASSWORD,
    fill_path,
    login_as,
    make_account,
    new_id,
    served_api_routes,
)

# The calendar feed is read with the secret in its link: calendar apps send no bearer token.
OPEN_ROUTES = {
    ("POST", "/api/auth/login"),
    ("GET", "/api/health"),
    ("GET", "/api/calendar/{name:str}"),
}
GUARDED_ROUTES = [pair for pair in served_api_routes() if pair not in OPEN_ROUTES]


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("detail"), str) and body["detail"]
    return body


async def login(client, username: str, password: str = PASSWORD):
    return await client.post("/api/auth/login", json={"username": username, "password": password})


async def test_login_answers_a_token_and_the_user(client):
    user_id, _ = await create_user("ada", PASSWORD, "manager", "north")
    response = await login(client, "ada")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"] == {
        "id": user_id,
        "username": "ada",
        "role": "manager",
        "team_id": body["user"]["team_id"],
    }
    assert len(body["token"]) >= 32
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["user"] == body["user"]


async def test_wrong_password_and_unknown_user_answer_the_same_401(client):
    await create_user("ada", PASSWORD, "rep", "north")
    wrong = assert_error(await login(client, "ada", "not-the-password"), 401)
    unknown = assert_error(await login(client, "nobody"), 401)
    # The answer does not tell which usernames exist.
    assert wrong == unknown


async def test_login_is_case_sensitive_on_the_password(client):
    await create_user("ada", PASSWORD, "rep", "north")
    assert_error(await login(client, "ada", PASSWORD.upper()), 401)


MALFORMED_LOGINS = [
    {},
    {"username": "ada"},
    {"username": "", "password": "x"},
    {"username": "ada", "password": 5},
    {"username": "ada", "password": "x", "extra": 1},
    {"username": "a" * 101, "password": "x"},
    ["ada", "x"],
    None,
]


async def test_malformed_login_bodies_answer_400(client):
    for body in MALFORMED_LOGINS:
        assert_error(await client.post("/api/auth/login", json=body), 400)


async def test_inactive_user_cannot_log_in_and_loses_their_tokens(client):
    rep = await login_as(client)
    await db.fetch("UPDATE users SET active = {} WHERE id = {}", False, rep.user_id)
    assert_error(await client.get("/api/me", headers=rep.headers), 401)
    assert_error(await login(client, rep.username), 401)


async def test_every_api_route_but_login_and_health_needs_a_token(client):
    assert len(GUARDED_ROUTES) > 20
    answers = {}
    for method, path in GUARDED_ROUTES:
        response = await client.request(method, fill_path(path, new_id()), json={})
        answers[(method, path)] = (response.status_code, response.json().get("error"))
    wrong = {route: answer for route, answer in answers.items() if answer[0] != 401}
    assert not wrong, f"routes that answer without a token: {wrong}"


async def test_open_routes_answer_without_a_token(client):
    assert (await client.get("/api/health")).json() == {"status": "ok"}
    assert_error(await login(client, "nobody"), 401)


MALFORMED_AUTHORIZATIONS = [
    "",
    "Bearer",
    "bearer",
    "Basic YWRhOnNlY3JldA==",
    "Token abc",
    "Bearer not-a-token",
    "Bearer " + "x" * 5000,
    "Bearer abc def",
    "Bearer\tabc",
    "BearerXYZ",
]


async def test_malformed_authorization_headers_answer_401(client):
    rep = await login_as(client)
    for header in [*MALFORMED_AUTHORIZATIONS, f"Basic {rep.token}", f"Token {rep.token}"]:
        response = await client.get("/api/accounts", headers={"Authorization": header})
        assert_error(response, 401)
    no_header = await client.get("/api/accounts")
    assert_error(no_header, 401)


async def test_a_token_with_a_prefix_or_suffix_is_not_the_token(client):
    rep = await login_as(client)
    for token in (rep.token[:-1], rep.token + "x", " " + rep.token.upper()):
        response = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert_error(response, 401)
    lowercase_scheme = {"Authorization": f"bearer {rep.token}"}
    assert (await client.get("/api/me", headers=lowercase_scheme)).status_code == 200


async def test_an_expired_token_answers_401(client):
    rep = await login_as(client)
    assert (await client.get("/api/me", headers=rep.headers)).status_code == 200
    past = datetime.now(UTC) - timedelta(seconds=1)
    await db.fetch(
        "UPDATE auth_tokens SET expires_at = {} WHERE token_hash = {}",
        past,
        token_digest(rep.token),
    )
    body = assert_error(await client.get("/api/me", headers=rep.headers), 401)
    assert body["error"] == "invalid_token"


async def test_tokens_expire_after_the_configured_lifetime(client, settings):
    rep = await login_as(client)
    rows = await db.fetch(
        "SELECT created_at, expires_at FROM auth_tokens WHERE token_hash = {}",
        token_digest(rep.token),
    )
    lifetime = rows[0]["expires_at"] - rows[0]["created_at"]
    assert abs(lifetime.total_seconds() - settings.token_ttl_s) < 5


async def test_logout_revokes_that_token_only(client):
    rep = await login_as(client)
    second = await login(client, rep.username)
    other_headers = {"Authorization": f"Bearer {second.json()['token']}"}
    response = await client.post("/api/auth/logout", headers=rep.headers)
    assert response.status_code == 204, response.text
    body = assert_error(await client.get("/api/accounts", headers=rep.headers), 401)
    assert body["error"] == "invalid_token"
    assert_error(await client.post("/api/auth/logout", headers=rep.headers), 401)
    # The same user's other device stays logged in.
    assert (await client.get("/api/me", headers=other_headers)).status_code == 200


async def test_a_successful_login_records_no_failure(client):
    rep = await login_as(client)
    for _ in range(6):
        assert (await login(client, rep.username)).status_code == 200
    rows = await db.fetch("SELECT COUNT(*) AS n FROM login_attempts")
    assert rows[0]["n"] == 0


async def test_passwords_are_stored_as_scrypt_hashes(client, production_password_cost):
    await create_user("ada", PASSWORD, "rep", "north")
    await create_user("bob", PASSWORD, "rep", "north")
    rows = await db.fetch("SELECT username, password_hash FROM users ORDER BY username")
    hashes = [row["password_hash"] for row in rows]
    for stored in hashes:
        assert PASSWORD not in stored
        scheme, n, r, p, salt, digest = stored.split("$")
        # OWASP's minimum for scrypt.
        assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**17, 8, 1)
        assert salt and digest
    # Salted: the same password gives two different hashes.
    assert hashes[0] != hashes[1]


async def password_hash_of(username: str) -> str:
    rows = await db.fetch("SELECT password_hash FROM users WHERE username = {}", username)
    return str(rows[0]["password_hash"])


async def test_a_hash_at_an_older_cost_is_upgraded_at_the_next_login(
    client, production_password_cost
):
    user_id, _ = await create_user("ada", PASSWORD, "rep", "north")
    old = hash_password(PASSWORD, Cost(n=2**14, r=8, p=1))  # what this server stored before
    await db.fetch("UPDATE users SET password_hash = {} WHERE id = {}", old, user_id)
    # A wrong password changes nothing.
    assert_error(await login(client, "ada", "not-the-password"), 401)
    assert await password_hash_of("ada") == old
    # The old hash still verifies, and the right password is stored again at today's cost.
    assert (await login(client, "ada")).status_code == 200
    upgraded = await password_hash_of("ada")
    assert upgraded != old
    assert parse_cost(upgraded) == production_password_cost == Cost(n=2**17, r=8, p=1)
    assert verify_password(PASSWORD, upgraded)
    assert (await login(client, "ada")).status_code == 200
    assert await password_hash_of("ada") == upgraded


async def test_logins_do_not_wait_for_other_work_in_threads(client):
    """Passwords are hashed in threads of their own: with every thread of the default pool
    busy (where push sends and geocoding run), logging in still goes through."""
    await create_user("ada", PASSWORD, "rep", "north")
    assert (await client.get("/api/health")).status_code == 200  # the connection is open
    loop = asyncio.get_running_loop()
    release = threading.Event()
    busy = [loop.run_in_executor(None, release.wait, 30) for _ in range(64)]
    try:
        response = await asyncio.wait_for(login(client, "ada"), 10)
        assert response.status_code == 200, response.text
        assert all(not task.done() for task in busy)
    finally:
        release.set()
        await asyncio.gather(*busy)


async def test_logins_do_not_wait_for_a_hanging_push_service(client):
    """Every push-send thread held (a push service that hangs until its timeout), and more
    sends waiting for them: logging in, which hashes in threads of its own, goes through."""
    from server.push import sender

    await create_user("ada", PASSWORD, "rep", "north")
    assert (await client.get("/api/health")).status_code == 200
    loop = asyncio.get_running_loop()
    release = threading.Event()
    held = [
        loop.run_in_executor(sender._SENDERS, release.wait, 30)
        for _ in range(sender.SEND_THREADS * 2)
    ]
    try:
        response = await asyncio.wait_for(login(client, "ada"), 10)
        assert response.status_code == 200, response.text
        assert all(not task.done() for task in held)
    finally:
        release.set()
        await asyncio.gather(*held)


async def test_tokens_are_stored_hashed(client):
    rep = await login_as(client)
    rows = await db.fetch("SELECT * FROM auth_tokens")
    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0].values())
    assert rep.token not in stored
    assert rows[0]["token_hash"] == token_digest(rep.token)


async def test_a_token_works_across_requests_and_records(client):
    rep = await login_as(client)
    account = await make_account(client, rep)
    response = await client.get(f"/api/accounts/{account['id']}", headers=rep.headers)
    assert response.status_code == 200, response.text
