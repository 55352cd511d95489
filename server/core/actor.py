"""The authenticated caller, and what it may see."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("rep", "manager", "admin")


@dataclass(frozen=True)
class Actor:
    user_id: str
    username: str
    role: str
    team_id: str
    token_id: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_manager(self) -> bool:
        """Managers and admins may reassign accounts and see team reports."""
        return self.role in ("manager", "admin")

    @property
    def scopes(self) -> tuple[str, ...] | None:
        """The scopes whose records this user sees; None means every record (admin)."""
        if self.is_admin:
            return None
        return (team_scope(self.team_id), user_scope(self.user_id))

    def sees(self, scope: str) -> bool:
        return self.is_admin or scope in (team_scope(self.team_id), user_scope(self.user_id))


def team_scope(team_id: str) -> str:
    return f"team:{team_id}"


def user_scope(user_id: str) -> str:
    return f"user:{user_id}"
