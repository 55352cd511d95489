"""Per-field last-writer-wins, and the values that lose (rules 4, 5 and 6).

Pure functions over plain values: no storage, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.clock import Stamp


@dataclass(frozen=True)
class LostValue:
    """A value that did not survive a merge, kept as a conflicts row."""

    field: str
    kept_value: Any
    lost_value: Any
    kept: Stamp
    lost: Stamp


@dataclass
class MergeOutcome:
    changed: dict[str, Any] = field(default_factory=dict)  # fields whose value changes
    stamps: dict[str, Stamp] = field(default_factory=dict)  # fields whose stamp changes
    lost: list[LostValue] = field(default_factory=list)
    some_lost: bool = False  # some field of the write lost: the result is "merged"


def merge_fields(
    values: Mapping[str, Any],
    stamps: Mapping[str, Stamp],
    write: Mapping[str, Any],
    stamp: Stamp,
    base_seq: int | None,
) -> MergeOutcome:
    """Merge one upsert's fields into a stored row.

    A field takes the written value only if the write's key is greater than the key of
    the write that set it. A losing value that differs is kept as lost (rule 5a). A
    winning value that replaces a different one set by another client after the writer's
    `base_seq` keeps the overwritten value too (rule 5b): the writer had not seen it.
    """
    out = MergeOutcome()
    seen = base_seq if base_seq is not None else 0
    for name, new in write.items():
        current = values.get(name)
        held = stamps.get(name)
        if held is not None and stamp.key <= held.key:
            out.some_lost = True
            if new != current:
                out.lost.append(LostValue(name, current, new, kept=held, lost=stamp))
            continue
        out.stamps[name] = stamp
        if new == current:
            continue
        out.changed[name] = new
        if held is not None and held.client_id != stamp.client_id and held.seq > seen:
            out.lost.append(LostValue(name, new, current, kept=stamp, lost=held))
    return out


def lost_to_delete(
    values: Mapping[str, Any], deleted_by: Stamp, write: Mapping[str, Any], stamp: Stamp
) -> list[LostValue]:
    """Rule 6: an upsert to a deleted record is refused; what it would have changed is kept."""
    return [
        LostValue(name, values.get(name), new, kept=deleted_by, lost=stamp)
        for name, new in write.items()
        if new != values.get(name)
    ]
