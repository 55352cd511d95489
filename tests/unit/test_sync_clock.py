"""The hybrid logical clock (sync/clock.py): how stamps order writes, the clamp on clocks
that run ahead (SPEC 4 rule 3), and tick(), the server's own clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.clock import (
    MAX_AHEAD_MS,
    MAX_COUNTER,
    MAX_MS,
    MIN_MS,
    Stamp,
    effective_hlc,
    tick,
    valid_hlc,
)

NOW = 1_732_280_000_000  # 2024-11-22, a plausible server time

ms_values = st.integers(min_value=0, max_value=MAX_MS)
counters = st.integers(min_value=0, max_value=MAX_COUNTER)
clocks = st.tuples(ms_values, counters)
client_ids = st.text(min_size=1, max_size=8)


def stamp(ms: int, counter: int = 0, client_id: str = "a", user_id: str | None = "u", seq: int = 0):
    return Stamp(ms, counter, client_id, user_id, seq)


# -- Stamp -------------------------------------------------------------------------------


def test_a_stamp_is_stored_as_ms_counter_client_user_seq() -> None:
    # Rows keep stamps as the array [ms, counter, client_id, user_id, seq].
    assert list(stamp(1000, 2, "c1", "u1", 41)) == [1000, 2, "c1", "u1", 41]


def test_the_key_is_ms_counter_client_and_the_hlc_is_ms_counter() -> None:
    s = stamp(1000, 2, "c1", "u1", 41)
    assert s.key == (1000, 2, "c1")
    assert s.hlc == (1000, 2)


def test_the_user_and_the_seq_do_not_order_writes() -> None:
    assert stamp(1000, 2, "c1", "u1", 41).key == stamp(1000, 2, "c1", None, 0).key


def test_ms_outweighs_counter_and_counter_outweighs_client_id() -> None:
    assert stamp(2000, 0, "a").key > stamp(1999, 10**9, "z").key
    assert stamp(2000, 1, "a").key > stamp(2000, 0, "z").key
    assert stamp(2000, 1, "b").key > stamp(2000, 1, "a").key


def test_equal_clocks_are_broken_by_client_id_as_text() -> None:
    # Text order, not numeric: "10" sorts before "9", upper case before lower case.
    assert stamp(5, 0, "9").key > stamp(5, 0, "10").key
    assert stamp(5, 0, "a").key > stamp(5, 0, "Z").key


@given(a=st.tuples(ms_values, counters, client_ids), b=st.tuples(ms_values, counters, client_ids))
def test_keys_order_as_ms_then_counter_then_client_id(a, b) -> None:
    sa, sb = stamp(*a), stamp(*b)
    assert (sa.key < sb.key) == (a < b)
    assert (sa.key == sb.key) == (a == b)


# -- effective_hlc -----------------------------------------------------------------------


def test_the_clamp_is_five_minutes() -> None:
    assert MAX_AHEAD_MS == 300_000


def test_a_clock_behind_or_level_with_the_server_is_used_as_it_is() -> None:
    assert effective_hlc((NOW - 86_400_000, 7), NOW) == (NOW - 86_400_000, 7)
    assert effective_hlc((NOW, 3), NOW) == (NOW, 3)
    assert effective_hlc((0, 0), NOW) == (0, 0)


def test_a_clock_up_to_five_minutes_ahead_is_used_as_it_is() -> None:
    assert effective_hlc((NOW + MAX_AHEAD_MS - 1, 4), NOW) == (NOW + MAX_AHEAD_MS - 1, 4)
    assert effective_hlc((NOW + MAX_AHEAD_MS, 4), NOW) == (NOW + MAX_AHEAD_MS, 4)


def test_a_clock_further_ahead_is_clamped_to_five_minutes_keeping_its_counter() -> None:
    assert effective_hlc((NOW + MAX_AHEAD_MS + 1, 4), NOW) == (NOW + MAX_AHEAD_MS, 4)
    a_year = 365 * 86_400_000
    assert effective_hlc((NOW + a_year, 0), NOW) == (NOW + MAX_AHEAD_MS, 0)


def test_a_clamped_clock_loses_to_a_later_one_the_server_sees_after_five_minutes() -> None:
    # A phone a year ahead wrote first; a phone with a right clock writes 6 minutes later.
    ahead = effective_hlc((NOW + 365 * 86_400_000, 0), NOW)
    later_now = NOW + MAX_AHEAD_MS + 60_000
    honest = effective_hlc((later_now, 0), later_now)
    assert stamp(*ahead, "zzz").key < stamp(*honest, "aaa").key


@given(hlc=clocks, now=ms_values)
def test_the_effective_clock_is_never_past_the_window_nor_later_than_sent(hlc, now) -> None:
    ms, counter = effective_hlc(hlc, now)
    assert counter == hlc[1]
    assert ms <= now + MAX_AHEAD_MS
    assert ms <= hlc[0]
    assert ms == hlc[0] or ms == now + MAX_AHEAD_MS
    assert effective_hlc((ms, counter), now) == (ms, counter)


# -- tick --------------------------------------------------------------------------------


def test_tick_takes_the_wall_clock_when_it_has_moved_on() -> None:
    assert tick((1000, 5), 1001) == (1001, 0)
    assert tick((0, 0), NOW) == (NOW, 0)


def test_tick_bumps_the_counter_when_the_wall_clock_has_not_moved() -> None:
    assert tick((1000, 5), 1000) == (1000, 6)


def test_tick_stays_ahead_of_a_wall_clock_that_went_back() -> None:
    assert tick((1000, 5), 400) == (1000, 6)
    assert tick(tick((1000, 5), 400), 999) == (1000, 7)


@given(last=clocks, now=ms_values)
def test_tick_is_past_the_last_reading_and_not_behind_the_wall(last, now) -> None:
    after = tick(last, now)
    assert after > last
    carried = now <= last[0] and last[1] == MAX_COUNTER  # into the next millisecond
    assert after[0] == (last[0] + 1 if carried else max(last[0], now))
    assert 0 <= after[1] <= MAX_COUNTER


@settings(max_examples=50)
@given(start=clocks, walls=st.lists(ms_values, max_size=30))
def test_ticking_through_any_wall_times_keeps_every_reading_increasing(start, walls) -> None:
    readings = [start]
    for wall in walls:
        readings.append(tick(readings[-1], wall))
    assert all(a < b for a, b in zip(readings, readings[1:], strict=False))


def test_tick_never_makes_a_clock_part_the_engine_would_refuse() -> None:
    last = (NOW + MAX_AHEAD_MS, MAX_COUNTER)
    after = tick(last, NOW)
    assert after > last
    assert after == (NOW + MAX_AHEAD_MS + 1, 0)  # the counter carried
    assert valid_hlc(after)


@pytest.mark.parametrize(
    ("hlc", "valid"),
    [
        ((MIN_MS, 0), True),
        ((MIN_MS - 1, 0), False),  # before 2000: no phone's clock
        ((MAX_MS, MAX_COUNTER), True),
        ((MAX_MS + 1, 0), False),
        ((NOW, MAX_COUNTER + 1), False),
        ((NOW, -1), False),
        ((-1, 0), False),
    ],
)
def test_the_bounds_of_a_clock(hlc: tuple[int, int], valid: bool) -> None:
    assert valid_hlc(hlc) is valid
