"""Debian's headless Chromium through Debian's chromedriver (no Selenium Manager), for the tests
that open a page: the web page (tests/e2e) and the monitoring report. A missing browser fails
the test; HEARTML_SKIP_BROWSER=1 skips it on purpose, on a machine that cannot have one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SKIP_BROWSER_ENV = "HEARTML_SKIP_BROWSER"
CHROME_ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage")


@contextmanager
def headless_chrome(
    profile: Path,
    page_timeout_s: float = 30,
    network_log: bool = False,
    arguments: tuple[str, ...] = CHROME_ARGUMENTS,
) -> Iterator[Any]:
    """A driver with the console log on (and the network log when asked), quit afterwards."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        if os.environ.get(SKIP_BROWSER_ENV) == "1":
            pytest.skip(f"{SKIP_BROWSER_ENV}=1 and no browser ({', '.join(missing)})")
        pytest.fail(
            f"headless browser not available: {', '.join(missing)} missing. Install Debian's "
            "chromium and chromium-driver with scripts/ci-install-browser.sh, or set "
            f"{SKIP_BROWSER_ENV}=1 to skip the browser tests",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in arguments:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={profile}")
    logs = {"browser": "ALL", **({"performance": "ALL"} if network_log else {})}
    options.set_capability("goog:loggingPrefs", logs)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(page_timeout_s)
    try:
        yield driver
    finally:
        driver.quit()
