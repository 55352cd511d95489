"""Writers per team (issue 20): the change log's order kept per domain (a team, or '' for
scopes that are no team's), docs/sync-protocol.md "Writers per team".

- sync_changes.domain: the domain of each entry's scope. Entries made before this
  migration keep '': every counter starts at the seq they stopped at, so no cursor ever
  needs to tell their domains apart (an old `1.` cursor at N is every domain at N).
- sync_counters: per domain, the newest seq committed in it (a row is what a writer of
  the domain locks).
- PostgreSQL: the sequence seqs come from (`sync_seq`), started above every seq handed
  out so far. SQLite keeps one writer and its counter in sync_meta.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T23:10:09:000000"
VERSION = "1.38.0"
DESCRIPTION = "sync_changes.domain, sync_counters, the seqs' sequence"

STATEMENTS = [
    "ALTER TABLE sync_changes ADD COLUMN domain VARCHAR(32) NOT NULL DEFAULT ''",
    "CREATE TABLE sync_counters (domain VARCHAR(32) PRIMARY KEY, seq BIGINT NOT NULL DEFAULT 0)",
]
POSTGRES = [
    "CREATE SEQUENCE IF NOT EXISTS sync_seq AS BIGINT MINVALUE 1 CACHE 1",
    "SELECT setval('sync_seq', GREATEST(1, (SELECT CAST(value AS BIGINT)"
    " FROM sync_meta WHERE key = 'seq')))",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="syncing", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        postgres = engine.engine_type == "postgres"
        for statement in STATEMENTS + (POSTGRES if postgres else []):
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
