"""Fixtures for the point-of-sale tests (the harness is in ``poskit``)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poskit import CHROMIUM, CHROMIUM_ARGS, PosServer, build_network, chromium_available, pos_server

#: What a till's page may load: this machine, and data/blob URLs it makes itself.
LOCAL = re.compile(r"^(https?://(127\.0\.0\.1|localhost)(:\d+)?/|data:|blob:)")


@pytest.fixture(scope="session")
def pilot(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """``--network DIR`` of the shared network (alice, bob, shop-phone, shop-till)."""
    return build_network(tmp_path_factory.mktemp("pos") / "pilot")


@pytest.fixture(scope="session")
def shop_phone(pilot: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PosServer]:
    """``offcash pos shop-phone``: a till on a wallet."""
    with pos_server(pilot, "shop-phone", tmp_path_factory.mktemp("logs") / "phone.log") as s:
        yield s


@pytest.fixture(scope="session")
def shop_till(pilot: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PosServer]:
    """``offcash pos shop-till``: a till on a receive-only terminal, with small QR frames so
    that a request needs several codes (the page animates them)."""
    log = tmp_path_factory.mktemp("logs") / "till.log"
    with pos_server(pilot, "shop-till", log, "--frame-budget", "60") as s:
        yield s


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``OFFCASH_POS_ARTEFACTS`` or a session temporary folder."""
    given = os.environ.get("OFFCASH_POS_ARTEFACTS")
    path = Path(given) if given else tmp_path_factory.mktemp("pos-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def playwright_api() -> Iterator[Any]:
    """Playwright, or a skip when Debian's chromium is absent (a failure in CI, which sets
    ``OFFCASH_REQUIRE_BROWSER=1`` after installing it)."""
    if not chromium_available():
        if os.environ.get("OFFCASH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is required (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_api: Any) -> Iterator[Any]:
    """Debian's Chromium, headless."""
    b = playwright_api.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh phone-sized page (its own context), English locale for predictable formats."""
    context = browser.new_context(viewport={"width": 412, "height": 915}, locale="en-US")
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    remote: list[str] = []
    p.on("request", lambda r: None if LOCAL.match(r.url) else remote.append(r.url))
    yield p
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not remote, f"the page loaded something from outside this machine: {remote}"
