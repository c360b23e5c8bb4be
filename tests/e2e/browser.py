"""Headless Chromium from Debian, driven by Playwright (its own browser download does not work
here): scripts/setup installs the `chromium` package."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium_page(width: int = 1440, height: int = 900) -> Iterator:
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: run scripts/setup (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()
