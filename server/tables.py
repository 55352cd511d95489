"""Every table of the app, for the engine set-up and the tests."""

from typing import Any

from piccolo.engine.base import Engine

from server.auth.tables import AuthToken, LoginAttempt, Team, User
from server.core.changelog.tables import SyncChange, SyncClient, SyncMeta, SyncResult
from server.core.tables import Account, Conflict, Contact, Deal, Note, Task, Visit
from server.nearby.tables import GeocodingAttempt
from server.push.tables import PushDelivery, PushSubscription

ALL_TABLES = (
    Team,
    User,
    AuthToken,
    LoginAttempt,
    Account,
    Contact,
    Visit,
    Note,
    Task,
    Deal,
    Conflict,
    SyncChange,
    SyncClient,
    SyncResult,
    SyncMeta,
    PushSubscription,
    PushDelivery,
    GeocodingAttempt,
)


def bind_tables(engine: Engine[Any]) -> None:
    """Point every table at `engine`, the one server.db.configure() returned, so that a
    Piccolo query on them goes to the process's database rather than to piccolo_conf's.
    Whoever configures the database calls this right after."""
    for table in ALL_TABLES:
        table._meta._db = engine
