"""Camera frames to one message: the server half of the page's QR scanner.

Theory of operation: the page decodes QR codes from the camera (zxing-wasm) and sends the raw
contents of every distinct code it has seen; it never parses them. This module groups them by
message (``FrameAssembler`` of ``offcash.transports.qr``, one per digest), ignores codes that
are not offcash frames (a URL on a poster), and returns the first complete message, or how far
the scan has got (frames seen of how many) so the page can say so. A complete message whose
digest does not match is a typed ``CorruptMessage``, like any QR reader's.
"""

from __future__ import annotations

from dataclasses import dataclass

from offcash.errors import DecodeError
from offcash.transports.qr import FrameAssembler, MalformedFrame, MixedFrames, parse_frame

#: Most codes one scan may send (a 255-frame message, plus noise).
MAX_CODES = 300
#: Largest content of one QR code (version 40, byte mode).
MAX_CODE_BYTES = 2953


@dataclass(frozen=True)
class Progress:
    """A scan still missing frames: ``seen`` of ``total`` for the most advanced message."""

    seen: int
    total: int


def assemble(codes: list[bytes]) -> bytes | Progress:
    """The first complete message among ``codes``, else the scan's progress."""
    if len(codes) > MAX_CODES:
        raise DecodeError("codes", f"more than {MAX_CODES} codes in one scan")
    groups: dict[bytes, FrameAssembler] = {}
    for code in codes:
        if len(code) > MAX_CODE_BYTES:
            raise DecodeError("codes", f"a code of {len(code)} bytes is larger than a QR code")
        try:
            frame = parse_frame(code)
        except MalformedFrame:
            continue  # not an offcash frame: another QR code in view
        try:
            groups.setdefault(frame.digest, FrameAssembler()).add(frame)
        except MixedFrames:
            continue  # same digest, other frame count or conflicting chunk: forged, skip it
    for group in groups.values():
        if group.complete:
            return group.message()
    best = max(groups.values(), key=lambda g: len(g.received), default=None)
    if best is None or best.total is None:
        return Progress(0, 0)
    return Progress(len(best.received), best.total)
