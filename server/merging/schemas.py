"""The wire types of `POST /api/merge` and `POST /api/merge/{merge_id}/undo` (SPEC
section 9)."""

from __future__ import annotations

import msgspec


class MergeRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Merge `merged_ids` into `survivor_id`; `fields` names, per field, the record whose
    value the survivor takes (a field not named keeps the survivor's value)."""

    table: str
    survivor_id: str
    merged_ids: list[str]
    fields: dict[str, str] = {}


class MergeAnswer(msgspec.Struct, kw_only=True):
    merge_id: str
    survivor_id: str
    merged_ids: list[str]
    fields: list[str]  # the survivor's fields that took another record's value
    moved: dict[str, int]  # table -> how many of its records now hang off the survivor


class Kept(msgspec.Struct, kw_only=True):
    """Something an undo left as it is, because it was changed since the merge."""

    table: str
    id: str
    reason: str


class UndoAnswer(msgspec.Struct, kw_only=True):
    merge_id: str
    restored: list[str]  # the merged records, back
    fields: list[str]  # the survivor's fields given their value from before the merge
    moved_back: dict[str, int]  # table -> how many went back to the record they left
    kept: list[Kept]
