"""A real browser (Debian's chromium through Playwright for Python) against the sandbox.

Playwright's own browser download cannot be reached from the build machines, so it drives the
system's /usr/bin/chromium (`make setup` installs it as root). Screenshots go to
.test-output/browser/ for people to look at.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from devtools.sandbox.observe import SandboxClient
from devtools.sandbox.push import push
from tests.e2e.conftest import azurite_tool, e2e_tools, start_sandbox  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".test-output" / "browser"
RULES = ROOT / "devtools" / "sandbox" / "rules.yaml"
RUNNING = frozenset({"queued", "creating_revision", "waiting_ready", "smoke_testing", "shifting", "verifying"})
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def quiet(line: str) -> None:
    pass


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


@pytest.fixture(scope="package")
def sandbox(e2e_tools, tmp_path_factory):  # noqa: F811 - e2e_tools is the imported fixture
    """The sandbox's rules with a longer canary bake, so a person (and this test) sees it running."""
    directory = tmp_path_factory.mktemp("browser-sandbox")
    rules = directory.parent / "browser-rules.yaml"
    text = RULES.read_text()
    assert "bake: 2s" in text
    rules.write_text(text.replace("bake: 2s", "bake: 6s"))
    sb, endpoints = start_sandbox(directory, rules_file=str(rules))
    try:
        yield sb, endpoints
    finally:
        sb.down()


@pytest.fixture(scope="package")
def seeded(sandbox):
    """A release, a pre-release to staging, a broken release, and a late older push that is skipped."""
    sb, endpoints = sandbox
    with SandboxClient(endpoints) as client:
        pushes = [("orders-api:1.5.0", "ok", "orders-api", "succeeded"),
                  ("orders-api:1.6.0-rc.1", "ok", "orders-api-staging", "succeeded"),
                  ("orders-api:1.5.1", "broken", "orders-api", "failed")]
        found = {}
        for ref, variant, app, phase in pushes:
            push(ref, variant, sb.dir, echo=quiet)
            repository, tag = ref.split(":")
            found[ref] = client.wait_for(repository, tag, app, timeout_s=90)
            assert found[ref]["phase"] == phase, found[ref]
        push("orders-api:1.4.0", "ok", sb.dir, echo=quiet)
        for _ in range(100):  # bounded: the skip is recorded within seconds
            if any(r.get("tag") == "1.4.0" for r in client.rejections()):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the older push 1.4.0 was never recorded as skipped")
    return endpoints, found




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
