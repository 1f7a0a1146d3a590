"""Debian's Chromium driven by Playwright: the browser every UI and attack test uses."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.hubprocess import HubProcess

CHROMIUM = os.environ.get("MLHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def chromium(args: list[str] | None = None) -> Iterator:
    """A headless Chromium (the `browser` fixture; tests that need extra flags call it)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/run-tests.sh does)")
    playwright_sync = pytest.importorskip("playwright.sync_api")
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_FLAGS, *(args or [])])
        try:
            yield browser
        finally:
            browser.close()


#: What Chromium says when the machine's network interfaces change during a navigation: other
#: tests on this engine create and remove Docker networks (a bridge each) at any time.
NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"


def goto(page, url: str, attempts: int = 3, **kwargs: Any):
    """``page.goto(url)``, again when Chromium aborted it because an interface came or went on
    this machine (never for any other error)."""
    for attempt in range(1, attempts + 1):
        try:
            return page.goto(url, **kwargs)
        except Exception as exc:  # playwright's Error, imported lazily like playwright itself
            if NETWORK_CHANGED not in str(exc) or attempt == attempts:
                raise


def new_page(browser, width: int = 1280, height: int = 860):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(30_000)
    return context.new_page()


def log_in(page, hub: HubProcess, name: str, password: str) -> None:
    goto(page, f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url(re.compile(r".*/hub/(home|spawn.*)$"))
