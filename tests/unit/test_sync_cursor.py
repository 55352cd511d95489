"""The pull cursor (sync/cursor.py): `1.<epoch>.<seq>.<fresh until>.<reset flag>`, and what
any other text a client sends decodes to: None, never an exception."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sync.cursor import Cursor, Position, decode_cursor

EPOCH = "9f86d081884c7d65"  # secrets.token_hex(8), as the migration makes it
BIGINT_MAX = 2**63 - 1  # seqs are 64-bit integers in both databases

epochs = st.text(alphabet="0123456789abcdef", min_size=1, max_size=16)
seqs = st.integers(min_value=0, max_value=BIGINT_MAX)


def test_a_cursor_encodes_as_its_five_dotted_parts() -> None:
    assert Cursor(EPOCH, 1234, 1200, False).encode() == f"1.{EPOCH}.1234.1200.0"
    assert Cursor(EPOCH, 0, 0, True).encode() == f"1.{EPOCH}.0.0.1"


def test_a_cursor_decodes_to_its_parts() -> None:
    assert decode_cursor(f"1.{EPOCH}.1234.1200.1") == Cursor(EPOCH, 1234, 1200, True)
    assert decode_cursor(f"1.{EPOCH}.0.0.0") == Cursor(EPOCH, 0, 0, False)


@given(epoch=epochs, seq=seqs, fresh_until=seqs, reset=st.booleans())
def test_encode_then_decode_gives_the_same_cursor(epoch, seq, fresh_until, reset) -> None:
    cursor = Cursor(epoch, seq, fresh_until, reset)
    decoded = decode_cursor(cursor.encode())
    assert decoded == cursor
    assert decoded is not None and decoded.reset is reset  # a bool, not 0 or 1


def test_no_cursor_decodes_to_none() -> None:
    assert decode_cursor(None) is None
    assert decode_cursor("") is None


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "not-a-cursor",
        ".",
        "....",
        "......",
        f"1.{EPOCH}.5.0",  # four parts
        f"1.{EPOCH}.5.0.0.0",  # six parts
        f"1.{EPOCH}.5.0.",  # empty flag
        f"1.{EPOCH}..0.0",  # empty seq
        f"1.{EPOCH}.5..0",  # empty fresh until
        f"2.{EPOCH}.5.0.0",  # another version
        f"01.{EPOCH}.5.0.0",
        f"1.{EPOCH}.5.0.2",  # a flag other than 0 or 1
        f"1.{EPOCH}.5.0.true",
        f"1.{EPOCH}.-1.0.0",  # negative numbers
        f"1.{EPOCH}.5.-1.0",
        f"1.{EPOCH}.five.0.0",
        f"1.{EPOCH}.5.0x10.0",
        f"1.{EPOCH}.5.5e3.0",
        f"1.{EPOCH}.5.1.5.0",
        f"1.{EPOCH}.nan.0.0",
        f"1.{EPOCH}.inf.0.0",
        "MS45Zjg2ZDA4MTg4NGM3ZDY1LjUuMC4w",  # the base64 of a good cursor
        "MS45Zjg2ZDA4MTg4NGM3ZDY1LjUuMC4w==",
        "%%%not base64%%%",
        "1.\x00.5.0.0\x00",
    ],
)
def test_text_that_is_not_one_of_our_cursors_decodes_to_none(text: str) -> None:
    assert decode_cursor(text) is None


def test_a_cursor_longer_than_100_characters_decodes_to_none() -> None:
    at_limit = f"1.{'e' * 90}.123.4.0"
    assert len(at_limit) == 100
    assert decode_cursor(at_limit) == Cursor("e" * 90, 123, 4, False)
    assert decode_cursor(f"1.{'e' * 91}.123.4.0") is None
    assert decode_cursor(f"1.{EPOCH}.{'9' * 90}.0.0") is None  # 113 characters


def test_an_epoch_that_is_not_ours_still_decodes() -> None:
    # Telling another database's cursor from ours is the engine's job (it then resets).
    assert decode_cursor("1.x.999999999.0.0") == Cursor("x", 999999999, 0, False)
    assert decode_cursor("1..5.0.0") == Cursor("", 5, 0, False)


@settings(max_examples=300)
@given(text=st.text(max_size=120))
@example(text="1.e.9.9.1")
@example(text="1.e." + "9" * 95)
def test_any_text_decodes_to_a_cursor_or_none_and_never_raises(text: str) -> None:
    decoded = decode_cursor(text)
    if decoded is not None:
        assert isinstance(decoded, Cursor)
        assert decoded.seq >= 0 and decoded.fresh_until >= 0
        assert isinstance(decoded.reset, bool)
        assert "." not in decoded.epoch


cursor_parts = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", "0", "1", "-0", "+1", " 1", "1_0", "0x1", "1e3", "nan", "٣", "\x00"]),
    st.text(max_size=6),
)


@settings(max_examples=300)
@given(parts=st.lists(cursor_parts, min_size=3, max_size=7))
def test_crafted_dotted_text_decodes_to_a_cursor_or_none_and_never_raises(parts) -> None:
    decoded = decode_cursor(".".join(["1", *parts]))
    if decoded is not None:
        assert len(parts) == 4
        assert decoded.seq >= 0 and decoded.fresh_until >= 0
        assert decoded.reset is (parts[3] == "1")


@pytest.mark.parametrize(
    "text", [f"1.{EPOCH}.5.{2**63}.0", f"1.{EPOCH}.{2**63}.0.0", f"1.{EPOCH}.5.{10**40}.1"]
)
def test_numbers_no_database_holds_decode_to_none(text: str) -> None:
    assert decode_cursor(text) is None


@pytest.mark.parametrize(
    "number",
    ["+5", " 5", "5 ", "5_0", "05", "-0", "\u0665"],  # \u0665: ARABIC-INDIC FIVE
)
def test_only_the_numbers_encode_writes_are_read(number: str) -> None:
    assert decode_cursor(f"1.{EPOCH}.{number}.0.0") is None


class _Snapshot:
    """What caught_up reads of a session: its epoch, and whether it holds a position (as
    a store with one order answers: its newest seq)."""

    def __init__(self, epoch: str, current_seq: int) -> None:
        self.epoch = epoch
        self.current_seq = current_seq

    async def holds(self, scopes: object, position: Position, fresh_until: int) -> bool:
        return max(position.seq, fresh_until) <= self.current_seq


@pytest.mark.parametrize(
    ("cursor", "current_seq", "caught"),
    [
        (None, 0, True),  # a first sync: any snapshot pages the scope from the start
        ("not ours", 0, True),  # a reset wherever it is answered
        ("1.other.50.50.0", 10, True),  # another database's: a reset too
        (f"1.{EPOCH}.40.40.0", 40, True),
        (f"1.{EPOCH}.40.40.0", 39, False),  # the replica has not replayed what was seen
        (f"1.{EPOCH}.10.40.1", 39, False),  # a first scan begun at 40: its tombstones
        (f"1.{EPOCH}.10.40.1", 40, True),
    ],
)
async def test_a_snapshot_answers_a_cursor_once_it_holds_all_the_cursor_has_seen(
    cursor: str | None, current_seq: int, caught: bool
) -> None:
    from sync.engine import caught_up

    snapshot = _Snapshot(EPOCH, current_seq)
    assert await caught_up(snapshot, None, cursor) is caught  # type: ignore[arg-type]


# -- Per-domain positions (issue 20): `2.` cursors ------------------------------------------

TEAM_A, TEAM_B = "a" * 32, "0123456789abcdef0123456789abcdef"


def test_a_cursor_with_domains_behind_encodes_them_in_order() -> None:
    cursor = Cursor(EPOCH, 90, 10, False, (("", 5), (TEAM_A, 80)))
    assert cursor.encode() == f"2.{EPOCH}.90.10.0.:5,{TEAM_A}:80"
    assert decode_cursor(cursor.encode()) == cursor
    assert cursor.position.at(TEAM_A) == 80 and cursor.position.at(TEAM_B) == 90
    assert cursor.position.lowest == 5


@given(
    seq=st.integers(min_value=1, max_value=BIGINT_MAX),
    behind=st.dictionaries(st.text("0123456789abcdef", max_size=32), seqs, max_size=20),
)
def test_a_position_round_trips_and_keeps_each_domain_where_it_is(seq, behind) -> None:
    from sync.cursor import position

    top = max([seq, *behind.values()])
    at = position(behind, top)
    cursor = Cursor(EPOCH, at.seq, 0, False, at.behind)
    assert decode_cursor(cursor.encode()) == cursor
    for domain, domain_seq in behind.items():
        assert at.at(domain) == domain_seq
    assert at.at("not a domain of it") == top


def test_too_many_domains_behind_put_every_domain_at_the_lowest() -> None:
    from sync.cursor import MAX_BEHIND, position

    seqs = {f"{n:032x}": 100 + n for n in range(MAX_BEHIND + 1)}
    assert position(seqs, 10_000) == (100, ())


@pytest.mark.parametrize(
    "text",
    [
        f"2.{EPOCH}.90.10.0",  # no domains: a `1.` cursor says that
        f"2.{EPOCH}.90.10.0.",
        f"2.{EPOCH}.90.10.0.{TEAM_A}",
        f"2.{EPOCH}.90.10.0.{TEAM_A}:90",  # not behind the seq
        f"2.{EPOCH}.90.10.0.{TEAM_A}:95",
        f"2.{EPOCH}.90.10.0.{TEAM_A}:5,{TEAM_B}:6",  # out of order
        f"2.{EPOCH}.90.10.0.{TEAM_A}:5,{TEAM_A}:6",  # twice
        f"2.{EPOCH}.90.10.0.{TEAM_A.upper()}:5",
        f"2.{EPOCH}.90.10.0.{TEAM_A}a:5",  # 33 characters
        f"2.{EPOCH}.90.10.0.{TEAM_A}:-5",
        f"2.{EPOCH}.90.10.0.{TEAM_A}:05",
        f"2.{EPOCH}.90.10.0.{TEAM_A}:5.0",
        f"1.{EPOCH}.90.10.0.{TEAM_A}:5",  # a `1.` cursor has no domains
    ],
)
def test_text_that_is_not_a_cursor_with_domains_decodes_to_none(text: str) -> None:
    assert decode_cursor(text) is None
