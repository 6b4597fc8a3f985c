"""The browser every page test drives: Debian's Chromium, headless, one a module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.served import CHROMIUM, need_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need_chromium()
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()
