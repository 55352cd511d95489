"""A real streaming replica for the tests: a fresh PostgreSQL primary and a hot standby
made from it with pg_basebackup, from Debian's PostgreSQL binaries, in a temporary folder
and on free ports (the machine's own cluster refuses replication connections), removed
after. PostgreSQL refuses to run as root: as root, every command runs as `postgres`."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI, free_port


def _pg_bin() -> Path:
    """FIELDCRM_TEST_PG_BIN, else Debian's newest PostgreSQL (/usr/lib/postgresql/N/bin)."""
    if os.environ.get("FIELDCRM_TEST_PG_BIN"):
        return Path(os.environ["FIELDCRM_TEST_PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
NEEDED = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
SERVER_USER = "postgres"

# Both servers: fast to start and stop, nothing kept for durability (a test's data), and
# statements counted per server (pg_stat_statements) so a test can tell who answered.
SETTINGS = """
listen_addresses = '127.0.0.1'
unix_socket_directories = '{sockets}'
wal_level = replica
max_wal_senders = 5
hot_standby = on
hot_standby_feedback = on
fsync = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 60
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
"""


def require_replica_binaries() -> None:
    """Skip (fail in CI) when Debian's PostgreSQL binaries are not there."""
    missing = [name for name in NEEDED if not (PG_BIN / name).exists()]
    if not missing:
        return
    message = f"PostgreSQL binaries missing in {PG_BIN}: {', '.join(missing)}"
    if IN_CI:
        pytest.fail(message + " (CI runs the replica tests: install postgresql-15)")
    pytest.skip(message)


def _as_server_user(*command: str) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVER_USER, "--", *command]
    return list(command)


def _run(*command: str) -> None:
    done = subprocess.run(
        _as_server_user(*command), capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}\n{done.stderr}")


@dataclass
class StreamingPair:
    """A primary and its streaming replica, both up, trusting local connections."""

    folder: Path
    primary_port: int
    replica_port: int

    @property
    def primary_dir(self) -> Path:
        return self.folder / "primary"

    @property
    def replica_dir(self) -> Path:
        return self.folder / "replica"

    def url(self, database: str, *, replica: bool = False) -> str:
        port = self.replica_port if replica else self.primary_port
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    def stop_replica(self) -> None:
        _run(str(PG_BIN / "pg_ctl"), "-D", str(self.replica_dir), "-m", "fast", "-w", "stop")

    def start_replica(self) -> None:
        _run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.replica_dir),
            "-l",
            str(self.folder / "replica.log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        for data in (self.replica_dir, self.primary_dir):
            if (data / "postmaster.pid").exists():
                subprocess.run(
                    _as_server_user(
                        str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"
                    ),  # fmt: skip
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
        shutil.rmtree(self.folder, ignore_errors=True)


def start_streaming_pair() -> StreamingPair:
    """initdb a primary, start it, pg_basebackup a standby from it (-R: it streams), start
    that; both on free ports. The caller stops it (StreamingPair.stop)."""
    require_replica_binaries()
    folder = Path(tempfile.mkdtemp(prefix="fieldcrm-replica-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(SERVER_USER)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    folder.chmod(0o700)
    pair = StreamingPair(folder, free_port(), free_port())
    try:
        _run(str(PG_BIN / "initdb"), "-D", str(pair.primary_dir), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip
        _append(pair.primary_dir / "postgresql.conf",
                SETTINGS.format(sockets=folder) + f"port = {pair.primary_port}\n")  # fmt: skip
        _run(str(PG_BIN / "pg_ctl"), "-D", str(pair.primary_dir),
             "-l", str(folder / "primary.log"), "-w", "start")  # fmt: skip
        _run(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(pair.primary_port),
             "-U", "postgres", "-D", str(pair.replica_dir), "-R", "-X", "stream",
             "-c", "fast", "--no-sync")  # fmt: skip
        _append(pair.replica_dir / "postgresql.conf", f"port = {pair.replica_port}\n")
        pair.start_replica()
    except BaseException:
        pair.stop()
        raise
    return pair


def _append(path: Path, text: str) -> None:
    # The file is the server user's; appending as root keeps its owner.
    with path.open("a") as conf:
        conf.write(text)


async def wait_for_replay(pair: StreamingPair, database: str, timeout_s: float = 30.0) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    import asyncio

    import asyncpg

    primary = await asyncpg.connect(pair.url(database))
    replica = await asyncpg.connect(pair.url(database, replica=True))
    try:
        lsn = await primary.fetchval("SELECT pg_current_wal_insert_lsn()::text")
        deadline = time.monotonic() + timeout_s
        while not await replica.fetchval(
            "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", lsn
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica has not replayed {lsn} in {timeout_s} s")
            await asyncio.sleep(0.02)
    finally:
        await primary.close()
        await replica.close()
