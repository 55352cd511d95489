"""Every table of the app, for the engine set-up and the tests."""

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
