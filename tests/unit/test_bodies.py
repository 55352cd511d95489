"""The depth checks of server/bodies.py, against msgspec itself: exact for well-formed
bodies, and never below the depth msgspec reaches in a malformed one."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from server.bodies import MAX_DEPTH, check_depth, json_too_deep, msgpack_too_deep
from server.errors import ApiError


def depth(value: Any) -> int:
    """Arrays and objects nested, as msgspec decodes them (an empty one counts)."""
    if isinstance(value, list | tuple):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


def nested(levels: int, inner: Any = None) -> Any:
    value = inner
    for _ in range(levels):
        value = [value]
    return value


# Text full of what the JSON check must see through: brackets and quotes, escaped or not.
tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\/ a\n\u00e9\u2028'), max_size=12) | st.text(
    max_size=300
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | tricky_text
)
msgpack_scalars = (
    json_scalars
    | st.binary(max_size=300)
    | st.builds(
        msgspec.msgpack.Ext,
        st.integers(-128, 127),
        st.sampled_from([1, 2, 4, 8, 16]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
        | st.binary(max_size=300),
    )
)


def trees(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=20) | st.dictionaries(tricky_text, children, max_size=20)
        ),
        max_leaves=60,
    )


@settings(max_examples=300, deadline=None)
@given(value=trees(json_scalars), limit=st.integers(0, 8))
@example(value=nested(MAX_DEPTH), limit=MAX_DEPTH)
@example(value=nested(MAX_DEPTH + 1), limit=MAX_DEPTH)
@example(value={"a": '"]]]]'}, limit=1)
@example(value=['\\"', "\\", [["[[[["]]], limit=2)
def test_json_depth_is_exact_for_well_formed_bodies(value: Any, limit: int) -> None:
    body = msgspec.json.encode(value)
    assert json_too_deep(body, limit) == (depth(value) > limit)


@settings(max_examples=300, deadline=None)
@given(value=trees(msgpack_scalars), limit=st.integers(0, 8))
@example(value=nested(MAX_DEPTH), limit=MAX_DEPTH)
@example(value=nested(MAX_DEPTH + 1), limit=MAX_DEPTH)
@example(value=[[0] * 70_000], limit=1)  # array32
@example(value=[{str(n): [n] for n in range(70_000)}], limit=2)  # map32
def test_msgpack_depth_is_exact_for_well_formed_bodies(value: Any, limit: int) -> None:
    body = msgspec.msgpack.encode(value)
    assert msgpack_too_deep(body, limit) == (depth(value) > limit)


def damaged(encode: Any, scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """A well-formed body cut, spliced or sprinkled with brackets and headers."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        body = bytearray(encode(draw(trees(scalars))))
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(body)))
            junk = draw(st.binary(max_size=6) | st.sampled_from([b"[[[[", b"{", b'"', b"\x91\x91"]))
            body[at : at + draw(st.integers(0, 3))] = junk
        return bytes(body)

    return build()


@settings(max_examples=400, deadline=None)
@given(
    body=damaged(msgspec.json.encode, json_scalars) | st.binary(max_size=200),
    limit=st.integers(0, 4),
)
def test_json_check_never_lets_msgspec_go_deeper(body: bytes, limit: int) -> None:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return
    if not json_too_deep(body, limit):
        assert depth(value) <= limit


@settings(max_examples=400, deadline=None)
@given(
    body=damaged(msgspec.msgpack.encode, msgpack_scalars) | st.binary(max_size=200),
    limit=st.integers(0, 4),
)
def test_msgpack_check_never_lets_msgspec_go_deeper(body: bytes, limit: int) -> None:
    try:
        value = msgspec.msgpack.decode(body)
    except msgspec.DecodeError:
        return
    if not msgpack_too_deep(body, limit):
        assert depth(value) <= limit


DEEP_BODIES = {
    "json arrays": (b"[" * 100_000 + b"]" * 100_000, False),
    "json objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, False),
    "json unclosed": (b"[" * 100_000, False),
    "json inside a field": (
        b'{"protocol":1,"fields":{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        False,
    ),
    "msgpack arrays": (b"\x91" * 100_000 + b"\x90", True),
    "msgpack maps": (b"\x81\xa1a" * 100_000 + b"\xc0", True),
    "msgpack array16s": (b"\xdc\x00\x01" * 100_000 + b"\xc0", True),
}


@pytest.mark.parametrize("name", DEEP_BODIES)
def test_deep_bodies_are_refused_before_decoding(name: str) -> None:
    body, msgpack = DEEP_BODIES[name]
    with pytest.raises(RecursionError):  # what msgspec does with them
        (msgspec.msgpack if msgpack else msgspec.json).decode(body)
    with pytest.raises(ApiError) as refused:
        check_depth(body, msgpack=msgpack)
    assert (refused.value.status, refused.value.error) == (400, "malformed")


def test_the_clients_bodies_pass() -> None:
    request = {
        "protocol": 1,
        "client_id": "c",
        "mutations": [
            {"mid": 1, "table": "notes", "id": "x", "op": "upsert", "hlc": [1, 0],
             "fields": {"body": "[{\"quoted\"}]", "tags": [["a"]]}},
        ] * 1000,
    }  # fmt: skip
    check_depth(msgspec.json.encode(request))
    check_depth(msgspec.msgpack.encode(request), msgpack=True)
