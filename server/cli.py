"""`fieldcrm serve | migrate | user add | user set | demo | worker`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from server import db
from server.errors import ApiError
from server.settings import ConfigError, Settings, load_settings

# The garbage collector's first threshold (CPython's is 700 new objects): a write batch keeps
# tens of thousands of objects alive until it ends (a reconnect wave about 8,000, a batch of
# 2,000 mutations about 36,000), so at 700 the collector ran a dozen times inside every
# batch, and each time went through what the batch held, only to find it alive: 5-7 ms of
# a 16-phone wave, and full collections of up to 50 ms inside a batch. Past a batch's size,
# most batches end (and free what they made) before a collection comes
# (docs/decisions/2026-12-06-sync-write-cpu.md).
GC_NEW_OBJECTS = 50_000


async def _with_db(settings: Settings, work: Callable[[], Awaitable[Any]]) -> Any:
    from server.core import automation
    from server.core.phones import set_default_region
    from server.migrate import migrate
    from server.tables import bind_tables

    bind_tables(db.configure(settings.database))
    set_default_region(settings.default_region)
    automation.configure(settings.timezone)
    await db.start()
    try:
        await migrate()
        return await work()
    finally:
        await db.stop()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    if args.workers < 1:
        print("fieldcrm: --workers must be 1 or more", file=sys.stderr)
        return 2
    if args.worker_index is not None:
        return _serve(settings, args, background=args.worker_index == 0, reuse_port=True)
    if args.workers > 1:
        return _serve_workers(settings, args)
    return _serve(settings, args, background=True, reuse_port=False)


def _serve(
    settings: Settings, args: argparse.Namespace, *, background: bool, reuse_port: bool
) -> int:
    """One process serving the API (the background jobs too if `background`). A worker of
    several (`reuse_port`) binds its own socket with SO_REUSEPORT: the kernel spreads the
    port's connections over the workers; the parent has migrated already."""
    import socket

    import uvicorn

    from server.app import create_app

    app = create_app(settings, run_migrations=not reuse_port, dispatcher=background)
    # What is loaded by now (modules, the app) lives as long as the process: the garbage
    # collector need not go through it again at every full collection.
    gc.freeze()
    gc.set_threshold(GC_NEW_OBJECTS, *gc.get_threshold()[1:])
    # proxy_headers=False: uvicorn would otherwise take a client's address from the
    # X-Forwarded-For of any peer on 127.0.0.1; the app decides whom to believe
    # (FIELDCRM_TRUSTED_PROXIES, server/auth/addresses.py).
    options: dict[str, Any] = {"log_level": "warning", "access_log": False, "proxy_headers": False}
    if not reuse_port:
        print(f"fieldcrm serving on http://{args.host}:{args.port}/", flush=True)
        uvicorn.run(app, host=args.host, port=args.port, **options)
        return 0
    config = uvicorn.Config(app, host=args.host, port=args.port, **options)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"fieldcrm: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the workers too
        uvicorn.Server(config).run(sockets=[sock])
    return 0


def _serve_workers(settings: Settings, args: argparse.Namespace) -> int:
    """`serve --workers N`: migrate once, then N processes on one port (SO_REUSEPORT),
    each with its own pool, side connection and event loop; the background jobs run in
    the first only (the others serve the API). If one exits, the others are stopped and
    its status is this command's: whatever supervises fieldcrm starts it again."""
    import signal
    import subprocess
    import time

    asyncio.run(_with_db(settings, _nothing))  # migrate, once, before any worker serves
    command = [sys.executable, "-m", "server.cli", "serve", "--host", args.host]
    command += ["--port", str(args.port)]
    workers = [
        subprocess.Popen([*command, "--worker-index", str(index)])  # noqa: S603 - our own
        for index in range(args.workers)
    ]
    print(
        f"fieldcrm serving on http://{args.host}:{args.port}/ with {args.workers} workers",
        flush=True,
    )
    stopping: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    try:
        while not stopping:
            ended = [worker for worker in workers if worker.poll() is not None]
            if ended:
                status = ended[0].returncode or 1
                print(f"fieldcrm: a worker exited ({ended[0].returncode})", file=sys.stderr)
                break
            time.sleep(0.2)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        deadline = time.monotonic() + 20
        for worker in workers:
            try:
                worker.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    return status


async def _nothing() -> None:
    return None


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(_with_db(settings, lambda: asyncio.sleep(0)))
    print("migrations applied")
    return 0


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    from server.auth.services import create_user

    async def work() -> tuple[str, bool]:
        return await create_user(args.username, args.password, args.role, args.team)

    try:
        user_id, team_created = asyncio.run(_with_db(settings, work))
    except ApiError as exc:
        print(f"fieldcrm: {exc.detail}", file=sys.stderr)
        return 1
    team_note = " (new team)" if team_created else ""
    print(f"user {args.username} ({args.role}) added to team {args.team}{team_note}: {user_id}")
    return 0


def cmd_user_set(settings: Settings, args: argparse.Namespace) -> int:
    from server.auth.services import UserChange, change_user

    if args.role is None and args.team is None and args.password is None and args.active is None:
        print(
            "fieldcrm: nothing to change: give --role, --team, --password or --active",
            file=sys.stderr,
        )
        return 2

    async def work() -> UserChange:
        return await change_user(
            args.username,
            role=args.role,
            team=args.team,
            password=args.password,
            active=None if args.active is None else args.active == "yes",
        )

    try:
        change = asyncio.run(_with_db(settings, work))
    except ApiError as exc:
        print(f"fieldcrm: {exc.detail}", file=sys.stderr)
        return 1
    user = change.user
    notes = [f"role {user.role}", f"team {change.team}"]
    if change.team_created:
        notes[-1] += " (new team)"
    notes.append("active" if change.active else "inactive")
    if change.password_set:
        notes.append("password set")
    if change.tokens_revoked:
        notes.append(f"{change.tokens_revoked} token(s) revoked")
    if change.rescoped:
        notes.append("their devices reset at their next sync")
    print(f"user {user.username} changed: {', '.join(notes)}")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from server.demo.loader import load_demo

    async def work() -> str | None:
        return await load_demo(if_empty=args.if_empty, seed=args.seed, timezone=settings.timezone)

    summary = asyncio.run(_with_db(settings, work))
    print(summary or "the database already has users: demo data not loaded")
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from server.background import run_background_jobs

    async def work() -> None:
        await run_background_jobs(settings)

    try:
        asyncio.run(_with_db(settings, work))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from server.transfer.importing import run_import_as

    try:
        body = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"fieldcrm: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1

    async def work() -> dict[str, Any]:
        return await run_import_as(
            args.username,
            args.table,
            body,
            dry_run=args.dry_run,
            on_duplicate=args.on_duplicate,
            team=args.team,
        )

    try:
        report = asyncio.run(_with_db(settings, work))
    except ApiError as exc:
        print(f"fieldcrm: {exc.detail}", file=sys.stderr)
        return 1
    done = "would create" if args.dry_run else "created"
    print(
        f"{report['rows']} rows: {done} {report['created']}, updated {report['updated']},"
        f" {report['duplicates']} duplicates, {report['error_count']} with errors"
        + (f"; import {report['import_id']}" if report["import_id"] else " (dry run)")
    )
    for error in report["errors"]:
        print(f"row {error['row']}, {error['column']}: {error['detail']}")
    if report["unknown_columns"]:
        print("unknown columns: " + json.dumps(report["unknown_columns"], ensure_ascii=False))
    return 0


def cmd_verify_history(settings: Settings, args: argparse.Namespace) -> int:
    from server.core.history import verify

    problems = asyncio.run(_with_db(settings, verify))
    for problem in problems:
        print(problem.line())
    if problems:
        count = len(problems)
        print(
            f"fieldcrm: {count} problem{'s' if count != 1 else ''} in the history", file=sys.stderr
        )
        return 1
    print("history intact")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fieldcrm", description="An offline-first field CRM.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, then serve the API and the app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes serving the API on the port (background jobs run in one of them)",
    )
    # A worker of `--workers N`, started by it (the first one runs the background jobs).
    serve.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    serve.set_defaults(run=cmd_serve)

    commands.add_parser("migrate", help="apply pending migrations").set_defaults(run=cmd_migrate)

    user = commands.add_parser("user", help="manage users")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser("add", help="create a user (and the team if new)")
    add.add_argument("username")
    add.add_argument("--password", required=True)
    add.add_argument("--role", required=True, choices=["rep", "manager", "admin"])
    add.add_argument("--team", required=True)
    add.set_defaults(run=cmd_user_add)
    change = user_commands.add_parser(
        "set", help="change a user; what is not given is left as it is"
    )
    change.add_argument("username")
    change.add_argument("--role", choices=["rep", "manager", "admin"])
    change.add_argument(
        "--team", help="move them to this team (made if new); their devices reset at next sync"
    )
    change.add_argument("--password", help="set a new password; revokes their tokens")
    change.add_argument(
        "--active", choices=["yes", "no"], help="no: they cannot log in; revokes their tokens"
    )
    change.set_defaults(run=cmd_user_set)

    demo = commands.add_parser("demo", help="load a demo organisation and print its logins")
    demo.add_argument("--if-empty", action="store_true", help="only when there are no users")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(run=cmd_demo)

    data = commands.add_parser("import", help="import accounts or contacts from CSV or xlsx")
    data.add_argument("table", choices=["accounts", "contacts"])
    data.add_argument("file")
    data.add_argument("--dry-run", action="store_true", help="report what it would do only")
    data.add_argument(
        "--as", dest="username", help="import as this manager or admin (default: an admin)"
    )
    data.add_argument("--team", help="admins: the team the new accounts go to (by name)")
    data.add_argument("--on-duplicate", choices=["skip", "update"], default="skip")
    data.set_defaults(run=cmd_import)

    commands.add_parser(
        "worker", help="run only the background jobs (reminders, geocoding, purge)"
    ).set_defaults(run=cmd_worker)
    commands.add_parser(
        "verify-history",
        help="check every record's history chain: report entries changed or removed outside"
        " fieldcrm (exit status 1 if any)",
    ).set_defaults(run=cmd_verify_history)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"fieldcrm: {exc}", file=sys.stderr)
        return 2
    return int(args.run(settings, args))


if __name__ == "__main__":
    sys.exit(main())
