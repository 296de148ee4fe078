"""A real browser (Debian's chromium through Playwright for Python) against the sandbox.

Playwright's own browser download cannot be reached from the build machines, so it drives the
system's /usr/bin/chromium (`make setup` installs it as root). Screenshots go to
.test-output/browser/ for people to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import azurite_tool, e2e_tools, start_sandbox  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".test-output" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _require(what: str, found: object) -> None:
    if found:
        return
    message = f"{what} is not installed (make setup installs it)"
    if os.environ.get("ACR_DEPLOY_REQUIRE_E2E"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium():
    """One browser for the session; each test opens its own context (fresh sessionStorage)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    _require("playwright (pip)", sync_playwright)
    executable = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else "")
    _require("chromium (apt)", executable)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def sandbox(e2e_tools, tmp_path_factory):  # noqa: F811 - e2e_tools is the imported fixture
    sb, endpoints = start_sandbox(tmp_path_factory.mktemp("sandbox"))
    try:
        yield sb, endpoints
    finally:
        sb.down()


@pytest.fixture
def page(chromium, request):
    """A fresh tab; on failure its last state is saved as a screenshot too."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        SHOTS.mkdir(parents=True, exist_ok=True)
        try:
            tab.screenshot(path=str(SHOTS / f"last-{request.node.name}.png"), full_page=True)
        except Exception:  # noqa: BLE001 - a screenshot must not hide the test's own failure
            pass
        context.close()


def shot(tab, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path
