"""erasures.blobs (SPEC section 12): the hashes of an erasure's attachments whose bytes
are still to be deleted from the blob store, written in the erasure's transaction, so that
a process that stops after the commit leaves the deletion to the retention job."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-23T03:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "erasures.blobs"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="records", description=DESCRIPTION)
    manager.add_column(
        table_class_name="Erasure",
        tablename="erasures",
        column_name="blobs",
        db_column_name="blobs",
        column_class_name="Text",
        column_class=Text,
        params={
            "default": "[]",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    return manager
