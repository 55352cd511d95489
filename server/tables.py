"""Every table of the app, for the engine set-up and the tests."""

from server.auth.tables import AuthToken, LoginAttempt, Team, User
from server.push.tables import PushDelivery, PushSubscription
from server.records.tables import Account, Conflict, Contact, Deal, Note, Task, Visit
from server.syncing.tables import SyncChange, SyncClient, SyncMeta, SyncResult

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
)
