from typing import Annotated

import msgspec

Username = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class LoginRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    username: Username
    password: Password


class UserPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH /api/users/{id}: what to change; a field not sent is left as it is."""

    role: str | msgspec.UnsetType = msgspec.UNSET
    team_id: str | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET
    password: Password | msgspec.UnsetType = msgspec.UNSET


class UserOut(msgspec.Struct, kw_only=True):
    id: str
    username: str
    role: str
    team_id: str


class LoginResponse(msgspec.Struct, kw_only=True):
    token: str
    user: UserOut


class MeResponse(msgspec.Struct, kw_only=True):
    user: UserOut


class UsersResponse(msgspec.Struct, kw_only=True):
    users: list[UserOut]


class TeamOut(msgspec.Struct, kw_only=True):
    id: str
    name: str


class TeamsResponse(msgspec.Struct, kw_only=True):
    teams: list[TeamOut]
