"""Helpers for the QR transport tests."""

from __future__ import annotations

from PIL import Image


def terminal_to_image(drawing: str, scale: int = 4) -> Image.Image:
    """Rasterize half-block terminal art as a dark terminal would show it."""
    lines = [line for line in drawing.split("\n") if line]
    width = max(len(line) for line in lines)
    light = {" ": (0, 0), "\u2580": (1, 0), "\u2584": (0, 1), "\u2588": (1, 1)}
    margin = 6
    rows: list[bytes] = [bytes(width + 2 * margin)] * margin
    for line in lines:
        top = bytearray(width + 2 * margin)
        bottom = bytearray(width + 2 * margin)
        for col, char in enumerate(line):
            upper, lower = light[char]
            top[margin + col] = 255 * upper
            bottom[margin + col] = 255 * lower
        rows += [bytes(top), bytes(bottom)]
    rows += [bytes(width + 2 * margin)] * margin
    image = Image.frombytes("L", (width + 2 * margin, len(rows)), b"".join(rows))
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
