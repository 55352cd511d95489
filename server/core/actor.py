"""Who writes and reads: the authenticated caller, or the server itself, and what each
may see."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("rep", "manager", "admin")  # a user's role; "system" is the server's own, never a user's
SYSTEM_ROLE = "system"

# The client id of the server's own writes with its clock (REST, the demo, jobs), in the
# stamps of the fields they set: it sorts after every device's UUID.
SERVER_CLIENT_ID = "server"


@dataclass(frozen=True)
class Actor:
    user_id: str
    username: str
    role: str
    team_id: str
    token_id: str = ""
    # Bumped when what the user sees changes wholesale (another team, to or from admin): a
    # device that pulled under an older version gets a reset (server/syncing/services.py).
    scope_version: int = 0

    @property
    def is_system(self) -> bool:
        """The server's own jobs (the geocoder, the reminder dispatcher, ...): they see
        every record and may write the fields the server keeps."""
        return self.role == SYSTEM_ROLE

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_manager(self) -> bool:
        """Managers and admins may reassign accounts and see team reports."""
        return self.role in ("manager", "admin", SYSTEM_ROLE)

    @property
    def scopes(self) -> tuple[str, ...] | None:
        """The scopes whose records this user sees; None means every record."""
        if self.is_admin or self.is_system:
            return None
        return (team_scope(self.team_id), user_scope(self.user_id))

    def sees(self, scope: str) -> bool:
        if self.is_admin or self.is_system:
            return True
        return scope in (team_scope(self.team_id), user_scope(self.user_id))


# The server writing on its own behalf. Its stamps name no user.
SYSTEM = Actor(user_id="", username="fieldcrm", role=SYSTEM_ROLE, team_id="")


def team_scope(team_id: str) -> str:
    return f"team:{team_id}"


def user_scope(user_id: str) -> str:
    return f"user:{user_id}"
