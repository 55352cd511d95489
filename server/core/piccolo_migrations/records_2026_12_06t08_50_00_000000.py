"""accounts.phone_e164 (SPEC section 3, v1.1): the phone in E.164 when it parses, kept by
the server (server/core/rules.py). The backfill fills it for the accounts there are, with
the default region the process was started with (FIELDCRM_DEFAULT_REGION).

The backfill writes the column only: it gives no new seq, so phones get the value with the
account's next change (the phone's own duplicate check reads the phone number itself when
a row has no phone_e164: pwa/js/duplicates.js)."""

import re
import uuid

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T08:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "accounts.phone_e164"

STATEMENTS = ["ALTER TABLE accounts ADD COLUMN phone_e164 VARCHAR(20) NULL DEFAULT NULL"]
E164 = re.compile(r"\+[0-9]{2,15}")
CHUNK = 500


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="records", description=DESCRIPTION)

    async def run() -> None:
        from server.core.phones import e164

        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)
        rows = await engine.run_ddl(
            "SELECT id, phone, country FROM accounts WHERE phone IS NOT NULL AND phone <> ''"
        )
        found = []
        for row in rows or []:
            number = e164(row["phone"], row["country"])
            if number is not None and E164.fullmatch(number):
                found.append((str(uuid.UUID(str(row["id"]))), number))
        # Values checked above (a UUID, "+" and digits), so written into the statement.
        for start in range(0, len(found), CHUNK):
            chunk = found[start : start + CHUNK]
            cases = " ".join(f"WHEN '{record_id}' THEN '{number}'" for record_id, number in chunk)
            ids = ", ".join(f"'{record_id}'" for record_id, _ in chunk)
            await engine.run_ddl(
                f"UPDATE accounts SET phone_e164 = CASE id {cases} END WHERE id IN ({ids})"
            )

    manager.add_raw(run)
    return manager
