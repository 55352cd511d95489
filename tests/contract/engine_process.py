"""A sync server process of its own, for the tests that run several on one database
(tests/contract/test_property.py's two-process mode, SPEC section 15).

`python -m tests.contract.engine_process DATABASE_URL` starts the database layer as
`fieldcrm serve` does (its pool, its listener, its caches, the device reports' writer)
and answers sync requests read from stdin, one JSON line each, through the server's store
and the engine, at the server time the line gives: the test keeps its clock, which HTTP
would not let it do. `EngineProcess` is the test's end of it.

A line in: {"requests": [[actor, body], ...], "now": ms}, actor as [user_id, username,
role, team_id]. One request goes through `round_trip` (engine_link), several through one
batch (engine_batch). A line out: {"answers": [[status, body], ...]} or {"error": text}.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import traceback
from pathlib import Path
from typing import Any

import msgspec

REPO = Path(__file__).resolve().parents[2]

_encoder = msgspec.json.Encoder()


async def _answer(line: bytes) -> dict[str, Any]:
    from server.core.actor import Actor
    from tests.contract.sim import engine_batch, engine_link

    message = msgspec.json.decode(line)
    now = int(message["now"])
    requests = [(Actor(*actor), body) for actor, body in message["requests"]]
    if len(requests) == 1:
        [(actor, body)] = requests
        return {"answers": [list(await engine_link(actor, lambda: now)(body))]}
    return {"answers": [list(answer) for answer in await engine_batch(requests, now)]}


async def serve(url: str) -> None:
    from server import db
    from server.core.changelog.clients import run_report_writer
    from server.settings import parse_database_url
    from server.tables import bind_tables

    # Many test processes share one PostgreSQL server: a small warm pool each.
    config = msgspec.structs.replace(parse_database_url(url), pool_min=2, pool_max=10)
    bind_tables(db.configure(config))
    await db.start()
    reports = asyncio.create_task(run_report_writer())
    loop = asyncio.get_running_loop()
    try:
        sys.stdout.buffer.write(b'{"ready": true}\n')
        sys.stdout.buffer.flush()
        while line := await loop.run_in_executor(None, sys.stdin.buffer.readline):
            try:
                out = await _answer(line)
            except Exception:
                out = {"error": traceback.format_exc()}
            sys.stdout.buffer.write(_encoder.encode(out) + b"\n")
            sys.stdout.buffer.flush()
    finally:
        reports.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reports
        await db.stop()


class EngineProcess:
    """The test's end of one such process: `start`, `send` requests, `stop`."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log
        self.process: asyncio.subprocess.Process | None = None
        self.answered = 0  # requests it has answered

    async def start(self) -> None:
        with open(self.log, "wb") as err:  # noqa: ASYNC230 - a local file, opened once
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.contract.engine_process", self.url,
                cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=err, limit=2**26,
            )  # fmt: skip
        ready = await self._read()
        assert ready == {"ready": True}, ready

    async def _read(self) -> Any:
        assert self.process is not None and self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the engine process ended: {self.log.read_text()[-3000:]}")
        return msgspec.json.decode(line)

    async def send(
        self, requests: list[tuple[Any, dict[str, Any]]], now_ms: int
    ) -> list[tuple[int, dict[str, Any]]]:
        """Each request's (status, body), as engine_link / engine_batch answer it."""
        assert self.process is not None and self.process.stdin is not None
        line = {
            "requests": [
                [[a.user_id, a.username, a.role, a.team_id], body] for a, body in requests
            ],
            "now": now_ms,
        }
        self.process.stdin.write(_encoder.encode(line) + b"\n")
        await self.process.stdin.drain()
        out = await self._read()
        if "error" in out:
            raise AssertionError(f"the engine process failed:\n{out['error']}")
        self.answered += len(requests)
        return [(int(status), body) for status, body in out["answers"]]

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
