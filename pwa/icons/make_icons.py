"""Draw fieldcrm's app icons (a white map pin on the brand blue) as PNG files.

Standard library only (zlib + struct), so it runs anywhere:

    python3 pwa/icons/make_icons.py

writes icon-192.png and icon-512.png (rounded square, transparent corners, purpose "any")
and icon-maskable-192.png and icon-maskable-512.png (full bleed, the pin inside the
central 80 % safe zone, purpose "maskable") next to this file. The output is
deterministic: running it again gives byte-identical files.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

BRAND = (11, 92, 173)
WHITE = (255, 255, 255)
SAMPLES = 3  # supersampling per axis, for smooth edges


def pin_inside(x: float, y: float, scale: float) -> bool:
    """Whether (x, y), in icon units centred on 0 with y down, is on the pin's white part."""
    cy, radius, tip = -0.08 * scale, 0.22 * scale, 0.36 * scale
    hole = 0.085 * scale
    dx, dy = x, y - cy
    dist2 = dx * dx + dy * dy
    if dist2 <= hole * hole:
        return False
    if dist2 <= radius * radius:
        return True
    # The tail: the cone from the tip tangent to the head, below the tangent chord.
    axis = tip - cy
    chord_y = cy + radius * radius / axis
    if y < chord_y or y > tip:
        return False
    half_angle = math.asin(radius / axis)
    angle = math.atan2(abs(x), tip - y)
    return angle <= half_angle


def rounded_inside(x: float, y: float, corner: float) -> bool:
    """Whether (x, y) is inside the rounded square [-0.5, 0.5]^2 with this corner radius."""
    qx, qy = abs(x) - (0.5 - corner), abs(y) - (0.5 - corner)
    if qx <= 0 or qy <= 0:
        return abs(x) <= 0.5 and abs(y) <= 0.5
    return qx * qx + qy * qy <= corner * corner


def render(size: int, maskable: bool) -> bytes:
    scale = 0.8 if maskable else 1.0
    rows = bytearray()
    palette: dict[bytes, int] = {}  # an RGBA colour -> its index, in order of first use
    step = 1.0 / (size * SAMPLES)
    total = SAMPLES * SAMPLES
    for py in range(size):
        rows.append(0)  # filter: none
        for px in range(size):
            shape = white = 0
            for sy in range(SAMPLES):
                y = (py * SAMPLES + sy + 0.5) * step - 0.5
                for sx in range(SAMPLES):
                    x = (px * SAMPLES + sx + 0.5) * step - 0.5
                    if maskable or rounded_inside(x, y, 0.22):
                        shape += 1
                        if pin_inside(x, y, scale):
                            white += 1
            if shape == 0:
                colour = b"\x00\x00\x00\x00"
            else:
                t = white / shape
                rgb = (round(BRAND[i] + (WHITE[i] - BRAND[i]) * t) for i in range(3))
                colour = bytes((*rgb, round(255 * shape / total)))
            rows.append(palette.setdefault(colour, len(palette)))
    return png(size, size, bytes(rows), list(palette))


def png(width: int, height: int, raw: bytes, palette: list[bytes]) -> bytes:
    """An indexed-colour PNG: the icons have a few dozen colours (the edges' blends), so
    a byte a pixel and a palette with its alphas (tRNS) is a third smaller than RGBA."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    assert len(palette) <= 256
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)  # 8-bit palette
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"PLTE", b"".join(colour[:3] for colour in palette))
        + chunk(b"tRNS", bytes(colour[3] for colour in palette))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    here = Path(__file__).resolve().parent
    for size in (192, 512):
        (here / f"icon-{size}.png").write_bytes(render(size, maskable=False))
        (here / f"icon-maskable-{size}.png").write_bytes(render(size, maskable=True))
        print(f"wrote icon-{size}.png and icon-maskable-{size}.png")


if __name__ == "__main__":
    main()
