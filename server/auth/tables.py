"""Teams, users, their tokens and login attempts."""

from piccolo.columns import UUID, BigInt, Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Team(Table, tablename="teams"):
    id = UUID(primary_key=True)
    name = Varchar(length=100, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())


class User(Table, tablename="users"):
    id = UUID(primary_key=True)
    username = Varchar(length=100, unique=True)
    password_hash = Text()
    role = Varchar(length=20)
    team_id = UUID(index=True)
    active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    # Bumped when what the user sees changes wholesale (another team, a role with other scopes):
    # their devices' cursors from before are not honoured (server/syncing/services.py).
    scope_version = Integer(default=0)


class AuthToken(Table, tablename="auth_tokens"):
    """A bearer token, stored only as its SHA-256 so a leaked table gives no logins."""

    id = UUID(primary_key=True)
    token_hash = Varchar(length=64, unique=True)
    user_id = UUID(index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)


class LoginAttempt(Table, tablename="login_attempts"):
    """Login attempts whose password was (or is being) checked and was wrong, per username
    and address, to slow guessing down (server/auth/throttle.py). `at` is when the password
    is checked; rows older than the window are purged."""

    id = UUID(primary_key=True)
    username = Varchar(length=100, index=True)
    address = Varchar(length=64, index=True)
    at = Timestamptz(default=TimestamptzNow(), index=True)


class TeamMove(Table, tablename="team_moves"):
    """When a user changed team (`fieldcrm user set --team`, PATCH /api/users/{id}): a
    write they made in their old team before the move still lands within 30 days of it
    (SPEC 4 rule 11, server/core/rules.py)."""

    id = UUID(primary_key=True)
    user_id = UUID(index=True)
    from_team = UUID()
    to_team = UUID()
    moved_at_ms = BigInt()
