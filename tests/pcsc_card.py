"""pcscd with vsmartcard's vpcd reader for the PC/SC tests: present, or skip (or fail).

The PC/SC tests need pcscd running with the vpcd driver (Debian ``pcscd`` and
``vsmartcard-vpcd``) and pyscard. When they are missing the tests are skipped with the reason
shown, or fail when ``OFFCASH_REQUIRE_CARD`` is set (``.ci/run`` sets it)."""

from __future__ import annotations

import os
import shutil

import pytest


def vpcd_readers() -> list[str]:
    """vpcd's reader names; skips (or fails, under ``OFFCASH_REQUIRE_CARD``) without them."""
    reason = None
    try:
        from offcash.card import process

        slots = process.vpcd_slots()
    except Exception as exc:
        slots, reason = {}, f"PC/SC unavailable: {exc}"
    if not slots:
        reason = reason or "pcscd lists no vpcd reader (install vsmartcard-vpcd, start pcscd)"
    if reason is not None:
        if os.environ.get("OFFCASH_REQUIRE_CARD"):
            pytest.fail(reason)
        pytest.skip(reason)
    return [slots[s] for s in sorted(slots)]


def opensc_tool() -> str:
    """The path of ``opensc-tool`` (Debian ``opensc``); skips or fails like ``vpcd_readers``."""
    path = shutil.which("opensc-tool")
    if path is None:
        reason = "opensc-tool is not installed (Debian: opensc)"
        if os.environ.get("OFFCASH_REQUIRE_CARD"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path
