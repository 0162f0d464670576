"""docs/APDU.md says what the code does: every instruction with its byte, the AID, the trace."""

from __future__ import annotations

import re
from pathlib import Path

from offcash.se.card import refusal
from offcash.se.card.wire import AID, ATR, Ins

DOC = (Path(__file__).resolve().parents[3] / "docs" / "APDU.md").read_text(encoding="utf-8")

ISO = {
    Ins.SELECT,
    Ins.VERIFY,
    Ins.CHANGE_REFERENCE_DATA,
    Ins.RESET_RETRY_COUNTER,
    Ins.INTERNAL_AUTHENTICATE,
}


def test_every_offcash_instruction_is_in_the_table_with_its_byte() -> None:
    rows = dict(re.findall(r"^\| `([0-9A-F]{2})` \| ([A-Z /]+?) [|(]", DOC, re.MULTILINE))
    for ins in Ins:
        if ins in ISO or ins is Ins.GET_RESPONSE:
            continue
        assert rows.get(f"{ins:02X}", "").strip() == ins.name.replace("_", " "), ins


def test_every_iso_instruction_is_in_the_table_with_its_header() -> None:
    rows = dict(re.findall(r"^\| ([A-Z ]+?) \| `00 ([0-9A-F]{2})", DOC, re.MULTILINE))
    for ins in ISO:
        assert rows.get(ins.name.replace("_", " ")) == f"{ins:02X}", ins


def test_the_aid_atr_and_status_words_are_the_documented_ones() -> None:
    assert f"`{AID.hex(' ').upper()}`" in DOC
    assert f"`{ATR.hex(' ').upper()}`" in DOC
    for sw in (refusal.INSUFFICIENT_FUNDS, refusal.REVOKED, refusal.CANNOT_DECRYPT):
        assert f"`{sw >> 8:02X} {sw & 0xFF:02X}`" in DOC


def test_the_trace_was_generated() -> None:
    trace = DOC.split("<!-- trace:begin -->", 1)[1].split("<!-- trace:end -->", 1)[0]
    assert trace.count("    > ") > 30
    assert "    > 00 A4 04 00 09 F0 4F 46 46 43 41 53 48 01 00" in trace
