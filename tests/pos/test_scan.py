"""Camera codes to one message: any order, repeats, noise, two messages in view, forgeries."""

from __future__ import annotations

import os

import pytest

from offcash.errors import DecodeError
from offcash.pos.scan import MAX_CODES, Progress, assemble
from offcash.transports import CorruptMessage, encode_frames


def test_frames_in_any_order_with_repeats_and_noise() -> None:
    message = os.urandom(700)
    frames = encode_frames(message, budget=200)
    assert len(frames) == 4
    noise = [b"https://example.com/menu", b"OC\x09not a frame"]
    assert assemble(noise + frames[2:] + frames[:1]) == Progress(3, 4)
    assert assemble([*noise, *frames[::-1], frames[0]]) == message


def test_two_messages_in_view_the_complete_one_wins() -> None:
    a, b = os.urandom(300), os.urandom(300)
    fa, fb = encode_frames(a, budget=100), encode_frames(b, budget=100)
    assert assemble(fa[:2] + fb) == b
    assert assemble(fa[:2] + fb[:1]) == Progress(2, 3)


def test_nothing_readable_is_no_progress() -> None:
    assert assemble([]) == Progress(0, 0)
    assert assemble([b"hello"]) == Progress(0, 0)


def test_a_forged_frame_is_a_typed_error() -> None:
    message = os.urandom(300)
    frames = encode_frames(message, budget=100)
    forged = frames[1][:-1] + bytes([frames[1][-1] ^ 1])
    with pytest.raises(CorruptMessage):
        assemble([frames[0], forged, frames[2]])
    # the genuine frame seen first wins over a conflicting one seen later
    assert assemble([*frames, forged]) == message


def test_bounds() -> None:
    with pytest.raises(DecodeError):
        assemble([b"x"] * (MAX_CODES + 1))
    with pytest.raises(DecodeError):
        assemble([b"OC" + bytes(3000)])
