"""Debian's chromium driven by Playwright: where it is, how it starts, and the skip (with
its reason) of a test module when either is missing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ARGS", "CHROMIUM", "playwright_or_skip"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def playwright_or_skip() -> Any:
    """``playwright.sync_api``; called at a module's top, it skips the whole module (with
    the reason) when Playwright or Debian's chromium is missing."""
    api = pytest.importorskip("playwright.sync_api",
                              reason="Playwright for Python is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)",
                    allow_module_level=True)
    return api
