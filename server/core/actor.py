"""Who writes and reads: the authenticated caller, or the server itself, and what each
may see."""

from __future__ import annotations

import functools
import hashlib
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
        """The scopes whose records this user sees; None means every record. A scope that
        ends with "*" stands for every scope that starts with what comes before it (a
        manager sees the rejected writes of everyone in their team): see `scope_filter`."""
        if self.is_admin or self.is_system:
            return None
        own = (team_scope(self.team_id), user_scope(self.user_id))
        if self.is_manager:
            return (*own, review_scope(self.team_id, "*"))
        return (*own, review_scope(self.team_id, self.user_id))

    def sees(self, scope: str) -> bool:
        if self.is_admin or self.is_system:
            return True
        if self.is_manager and scope.startswith(review_scope(self.team_id, "")):
            return True
        return scope in self._own_scopes

    @functools.cached_property
    def _own_scopes(self) -> frozenset[str]:
        """The scopes `sees` matches exactly, made once per actor (it is asked at every
        write)."""
        return frozenset(
            (
                team_scope(self.team_id),
                user_scope(self.user_id),
                review_scope(self.team_id, self.user_id),
            )
        )


# The server writing on its own behalf. Its stamps name no user.
SYSTEM = Actor(user_id="", username="fieldcrm", role=SYSTEM_ROLE, team_id="")


def team_scope(team_id: str) -> str:
    return f"team:{team_id}"


def user_scope(user_id: str) -> str:
    return f"user:{user_id}"


@functools.lru_cache(maxsize=4096)  # a digest per call: `sees` asks for it at every write
def review_scope(team_id: str, user_id: str) -> str:
    """What a user's refused writes are kept in: seen by them and their team's managers
    (who see every scope that starts with `review_scope(team, "")`). Scopes are at most 60
    characters, so the team is its UUID's hex and the user a 64-bit digest of theirs;
    `user_id` "*" and "" stay as they are (a pattern, a prefix)."""
    user = user_id if user_id in ("", "*") else hashlib.sha256(user_id.encode()).hexdigest()[:16]
    return f"review:{team_id.replace('-', '')}:{user}"


def scope_domain(scope: str) -> str | None:
    """The domain whose order a scope's change-log entries keep (docs/sync-protocol.md,
    "Writers per team"): for a team's scope and its refused writes, the team (its hex);
    for a user's own scope, None: the user's team's, which the caller looks up; for any
    other scope, '' (the domain of no team)."""
    kind, _, rest = scope.partition(":")
    if kind == "team":
        return rest.replace("-", "")
    if kind == "review":
        return rest.partition(":")[0]
    if kind == "user":
        return None
    return ""


def scopes_domains(scopes: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The domains of a caller's scopes, in order (None: every domain); a user's own scope
    is in their team's, which their team's scope names."""
    if scopes is None:
        return None
    return tuple(sorted({d for s in scopes if (d := scope_domain(s)) is not None}))


def team_domain(team_id: str | None) -> str:
    """A team's domain: its UUID's hex ('' for no team)."""
    return (team_id or "").replace("-", "")


def scope_filter(scopes: tuple[str, ...]) -> tuple[str, list[str]]:
    """SQL (with `{}` placeholders) that a row's `scope` is one of `scopes`, a scope ending
    with "*" matching every scope that starts with the rest (as a range, which the indexes
    that start with scope serve)."""
    exact = [scope for scope in scopes if not scope.endswith("*")]
    prefixes = [scope[:-1] for scope in scopes if scope.endswith("*")]
    terms = [f"scope IN ({', '.join('{}' for _ in exact)})"] if exact else []
    args: list[str] = list(exact)
    for prefix in prefixes:
        # Every string that starts with `prefix` sorts at or after it and before the
        # prefix with its last character moved on by one.
        terms.append("(scope >= {} AND scope < {})")
        args += [prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)]
    return "(" + " OR ".join(terms or ["FALSE"]) + ")", args
