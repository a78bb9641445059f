"""Headless Chromium for the report's picture (docs/screenshot_report.py) and its browser test:
Debian's `chromium` package driven by Playwright, never a browser Playwright downloads."""

from __future__ import annotations

import os
import shutil

# Nothing in the background reaches the network; a fresh profile is Playwright's default.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium() -> str | None:
    """$CHROMIUM, Debian's /usr/bin/chromium, or `chromium` on PATH; None when there is none."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None
