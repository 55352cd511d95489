"""Request bodies nest at most `MAX_DEPTH` arrays and objects deep.

msgspec decodes a container by calling itself, so a body of 100,000 nested arrays (200 KB)
ends in a RecursionError, whatever type it is decoded into: values typed `Any` (a
mutation's `fields`) are decoded whole, and so are the keys a Struct does not know (they
are skipped by the same recursion). So the depth is checked on the bytes, before any
decoding: by `BoundedRequest` for every route whose body Litestar decodes, and by the sync
route, which decodes its own. No body the clients send nests deeper than 5.
"""

from __future__ import annotations

import itertools
import operator
from typing import Any

from litestar import Request

from server.errors import ApiError

MAX_DEPTH = 32

# A step of the depth for each bracket, plus one: 2 opens, 0 closes (bytes cannot be -1).
_JSON_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether decoding `body` as JSON could go more than `limit` arrays and objects deep.

    The depth after each bracket outside strings is the number of brackets opened minus the
    number closed; its maximum is the document's depth, and, for a malformed document, at
    least the depth the decoder reaches before it stops. All of it runs in C: `bytes`
    methods and iterators, no Python loop over the body.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    # Escaped backslashes, then escaped quotes, out of the way: every `"` left starts or
    # ends a string, so every other piece between them is outside strings.
    unescaped = body
    if b"\\" in body:
        unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[0::2])
    steps = outside.translate(_JSON_STEPS, _NOT_BRACKETS)
    if len(steps) - steps.count(0) <= limit:
        return False
    if b"\x02" * (limit + 1) in steps:
        return True  # the usual attack, found at once: a run of openers
    # Depth after the i-th bracket: the sum of the first i steps, less i.
    deepest: int = max(map(operator.sub, itertools.accumulate(steps), itertools.count(1)))
    return deepest > limit


# MessagePack: for each first byte, the size of the item when it is fixed, else 0.
_FIXED_SIZE = [0] * 256
for _first in [*range(0x00, 0x80), *range(0xE0, 0x100), 0xC0, 0xC2, 0xC3]:  # ints, nil, bools
    _FIXED_SIZE[_first] = 1
for _first in range(0xA0, 0xC0):  # fixstr
    _FIXED_SIZE[_first] = 1 + (_first & 0x1F)
for _first, _size in {
    0xCA: 5,
    0xCB: 9,
    0xCC: 2,
    0xCD: 3,
    0xCE: 5,
    0xCF: 9,
    0xD0: 2,
    0xD1: 3,
    0xD2: 5,
    0xD3: 9,
    0xD4: 3,
    0xD5: 4,
    0xD6: 6,
    0xD7: 10,
    0xD8: 18,
}.items():  # floats, uints, ints, fixext
    _FIXED_SIZE[_first] = _size
# Items whose length follows the first byte: (bytes of the length, bytes before the data).
_SIZED = {
    0xC4: (1, 2), 0xC5: (2, 3), 0xC6: (4, 5),  # bin
    0xC7: (1, 3), 0xC8: (2, 4), 0xC9: (4, 6),  # ext (a type byte after the length)
    0xD9: (1, 2), 0xDA: (2, 3), 0xDB: (4, 5),  # str
}  # fmt: skip
# Containers: (bytes of the count, items per count: 1 for an array, 2 for a map).
_CONTAINERS = {
    **{first: (0, 1) for first in range(0x90, 0xA0)},
    **{first: (0, 2) for first in range(0x80, 0x90)},
    0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2),
}  # fmt: skip
_NOT_CONTAINERS = bytes(first for first in range(256) if first not in _CONTAINERS)


def msgpack_too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether decoding `body` as MessagePack could go more than `limit` arrays and maps
    deep. It walks the items of the body's object without recursion; at a byte that starts
    no item, or at the end of the body, it stops, as the decoder does."""
    if len(body.translate(None, _NOT_CONTAINERS)) <= limit:
        return False  # not even that many bytes that could open a container
    end = len(body)
    pos = 0
    enclosing: list[int] = []  # for each open container, the items its parent has left
    left = 1  # items left in the current container; the body holds one object
    while pos < end:
        first = body[pos]
        size = _FIXED_SIZE[first]
        if size:
            pos += size
        elif first in _SIZED:
            width, head = _SIZED[first]
            pos += head + int.from_bytes(body[pos + 1 : pos + 1 + width], "big")
        elif first in _CONTAINERS:
            width, per = _CONTAINERS[first]
            count = int.from_bytes(body[pos + 1 : pos + 1 + width], "big") if width else first & 15
            pos += 1 + width
            if len(enclosing) >= limit:
                return True
            if count:
                enclosing.append(left - 1)  # the container is one item of its parent
                left = count * per
                continue
        else:
            return False  # 0xC1, never used: the decoder refuses the body there
        left -= 1
        while not left:
            if not enclosing:
                return False  # the body's object is complete
            left = enclosing.pop()
    return False


def check_depth(body: bytes, *, msgpack: bool = False) -> None:
    """Answer 400 for a body that nests deeper than `MAX_DEPTH`, before it is decoded."""
    too_deep = msgpack_too_deep(body) if msgpack else json_too_deep(body)
    if too_deep:
        raise ApiError(
            400,
            "malformed",
            f"The body nests arrays and objects more than {MAX_DEPTH} deep; send it flatter.",
        )


class BoundedRequest(Request[Any, Any, Any]):
    """The app's request class: the JSON or MessagePack body that Litestar decodes for a
    handler's `data` is checked for depth first, so every route is covered, new ones too."""

    async def json(self) -> Any:
        check_depth(await self.body())
        return await super().json()

    async def msgpack(self) -> Any:
        check_depth(await self.body(), msgpack=True)
        return await super().msgpack()
