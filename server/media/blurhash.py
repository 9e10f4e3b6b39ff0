"""BlurHash encoding (https://blurha.sh): a ~30-character placeholder clients paint while the
image loads. Encoded from a small copy of the image (the hash only keeps a few frequencies)."""

from __future__ import annotations

import math
from collections.abc import Sequence

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _base83(value: int, length: int) -> str:
    return "".join(_ALPHABET[(value // 83 ** (length - 1 - i)) % 83] for i in range(length))


def _to_linear(channel: int) -> float:
    v = channel / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    if v <= 0.0031308:
        return round(v * 12.92 * 255)
    return round((1.055 * v ** (1 / 2.4) - 0.055) * 255)


def _sign_pow(value: float, exponent: float) -> float:
    return math.copysign(abs(value) ** exponent, value)


def encode(
    pixels: Sequence[tuple[int, int, int]],
    width: int,
    height: int,
    x_comp: int = 4,
    y_comp: int = 3,
) -> str:
    """The BlurHash of an RGB image given as `width * height` pixels, row by row."""
    if not (1 <= x_comp <= 9 and 1 <= y_comp <= 9):
        raise ValueError("components must be 1 to 9")
    linear = [(_to_linear(r), _to_linear(g), _to_linear(b)) for r, g, b in pixels]
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_comp)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_comp)]
    factors: list[tuple[float, float, float]] = []
    for j in range(y_comp):
        for i in range(x_comp):
            norm = (1 if i == 0 and j == 0 else 2) / (width * height)
            r = g = b = 0.0
            for y in range(height):
                row = y * width
                cy = cos_y[j][y]
                for x in range(width):
                    basis = cos_x[i][x] * cy
                    pr, pg, pb = linear[row + x]
                    r += basis * pr
                    g += basis * pg
                    b += basis * pb
            factors.append((r * norm, g * norm, b * norm))
    dc, ac = factors[0], factors[1:]
    out = _base83((x_comp - 1) + (y_comp - 1) * 9, 1)
    if ac:
        actual_max = max(abs(c) for f in ac for c in f)
        quant_max = max(0, min(82, math.floor(actual_max * 166 - 0.5)))
        max_value = (quant_max + 1) / 166
        out += _base83(quant_max, 1)
    else:
        max_value = 1.0
        out += _base83(0, 1)
    out += _base83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4)
    for f in ac:
        q = [max(0, min(18, math.floor(_sign_pow(c / max_value, 0.5) * 9 + 9.5))) for c in f]
        out += _base83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2)
    return out
