"""`fieldcrm serve --workers N` (SPEC section 15): N processes answer on one port, the
background jobs run in one of them, and stopping the command stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import Database, free_port

REPO = Path(__file__).resolve().parents[2]


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(part) for part in text.split()]


def listening_inodes(port: int) -> set[str]:
    """The socket inodes listening on `port` (TCP, IPv4)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and int(local.split(":")[1], 16) == port:
            found.add(inode)
    return found


def socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:[") : -1])
    return found


def test_workers_share_one_port_and_stop_together(database: Database, tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database.url,
        "FIELDCRM_DATA_DIR": str(tmp_path),
        "FIELDCRM_DB_POOL_MIN": "2",
        "FIELDCRM_GEOCODER": "off",
        "FIELDCRM_BLOB_URL": f"file://{tmp_path / 'blobs'}",
    }
    command = [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--workers", "2"]
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        parent = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        workers: list[int] = []
        while True:
            assert parent.poll() is None, log.read_text()
            workers = children(parent.pid)
            listening = listening_inodes(port)
            serving = [pid for pid in workers if socket_inodes(pid) & listening]
            if len(serving) == 2:
                break
            assert time.monotonic() < deadline, f"workers did not listen: {log.read_text()}"
            time.sleep(0.2)
        assert len(workers) == 2
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in workers]
        # Each worker is told its index; only the first runs the background jobs.
        assert sorted(c[c.index(b"--worker-index") + 1] for c in commands) == [b"0", b"1"]
        for _ in range(20):  # a new connection each time: the kernel picks a worker
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                assert http.get("/api/health").status_code == 200
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(30) == 0
        for pid in workers:
            assert (
                not Path(f"/proc/{pid}").exists()
                or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
            )
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
