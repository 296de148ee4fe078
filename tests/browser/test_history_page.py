"""The history page in a real browser against the sandbox: the key asked once, every push accounted
for, filters with their empty/error states, deep links, a canary updating live, a rollback through
the button. Tests share the package's sandbox and run in file order (versions only go up); this
file runs before test_release_cli.py."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from devtools.sandbox.observe import SandboxClient
from devtools.sandbox.push import push
from devtools.sandbox.sandbox import pusher

from .conftest import RUNNING, quiet, shot

pytestmark = pytest.mark.e2e


def page_url(endpoints, hash_part: str = "") -> str:
    return f"{endpoints['function_url']}/api/history{hash_part}"


def open_with_key(tab, endpoints, hash_part: str = "") -> None:
    tab.goto(page_url(endpoints, hash_part))
    dialog = tab.locator("#keydialog")
    dialog.wait_for(state="visible")
    tab.fill("#keyinput", endpoints["function_key"])
    tab.keyboard.press("Enter")
    dialog.wait_for(state="hidden")


def at_least(tab, table: str, count: int) -> None:
    """Locators only: the page's CSP forbids eval, which wait_for_function would need."""
    tab.locator(f"#{table} tbody tr").nth(count - 1).wait_for()


def rows(tab, table: str) -> list[str]:
    return tab.locator(f"#{table} tbody tr").all_inner_texts()


def test_the_key_is_asked_once_and_every_push_is_accounted_for(seeded, page):
    endpoints, found = seeded
    open_with_key(page, endpoints)
    at_least(page, "deployments", 3)
    listed = rows(page, "deployments")
    assert any("1.5.0" in r and "succeeded" in r and pusher() in r for r in listed), listed
    assert any("1.5.1" in r and "failed" in r for r in listed), listed
    nothing = rows(page, "nothing")
    assert any("orders-api:1.4.0" in r and "skipped" in r and "is older than 1.5.0, live on orders-api" in r for r in nothing), nothing
    apps = rows(page, "apps")
    assert any(r.startswith("orders-api (sandbox)") and "1.5.0" in r for r in apps), apps
    assert endpoints["function_key"] not in page.url
    assert page.evaluate("sessionStorage.getItem('acr-deploy-function-key')") == endpoints["function_key"]
    shot(page, "01-list")
    page.reload()  # same tab: the key is still there, no dialog
    at_least(page, "deployments", 3)
    assert not page.locator("#keydialog").is_visible()


def test_filters_with_empty_and_error_states_that_reset(seeded, page):
    endpoints, found = seeded
    open_with_key(page, endpoints)
    at_least(page, "deployments", 3)
    page.fill("input[name=app]", "staging")  # a substring of orders-api-staging
    page.keyboard.press("Enter")
    expect(page.locator("#deployments tbody tr")).to_have_count(1)
    assert "orders-api-staging" in rows(page, "deployments")[0]
    assert "app=staging" in page.url, "the filters are part of the link"
    page.fill("input[name=app]", "")
    page.select_option("select[name=status]", "failed")
    page.click("button[type=submit]")
    expect(page.locator("#deployments tbody tr")).to_have_count(1)
    assert "1.5.1" in rows(page, "deployments")[0]
    page.fill("input[name=app]", "no-such-app")
    page.click("button[type=submit]")
    page.locator("#deployments-empty").wait_for(state="visible")
    assert rows(page, "deployments") == []
    shot(page, "02-empty")

    page.click("#reset")
    page.fill("input[name=since]", "yesterday")
    page.click("button[type=submit]")
    expect(page.locator("#error")).to_contain_text("since must be")
    assert rows(page, "deployments") == [], "an error must not leave the old rows"
    shot(page, "03-error")
    page.fill("input[name=since]", "1d")
    page.click("button[type=submit]")
    at_least(page, "deployments", 3)
    assert page.inner_text("#error") == ""

    with page.expect_download() as download:
        page.click("#csv")
    text = Path(download.value.path()).read_text()
    records = list(csv.DictReader(io.StringIO(text)))
    assert {r["tag"] for r in records if r["record"] == "deployment"} >= {"1.5.0", "1.5.1", "1.6.0-rc.1"}
    assert any(r["record"] == "not deployed" and r["tag"] == "1.4.0" for r in records)


def test_deep_links_open_a_story_and_an_app_timeline(seeded, page):
    endpoints, found = seeded
    failed = found["orders-api:1.5.1"]
    open_with_key(page, endpoints, f"#/deployments/{failed['id']}?app=orders-api")
    at_least(page, "story", 3)
    assert page.inner_text("#dep-title") == "orders-api ← orders-api:1.5.1"
    facts = page.inner_text("#dep-facts")
    assert "failed" in facts and pusher() in facts and "orders-production" in facts
    story = " ".join(rows(page, "story"))
    assert "smoke_testing" in story and "failed" in story
    shot(page, "04-story")

    page.click("text=timeline of orders-api")
    at_least(page, "timeline", 2)
    assert "/apps/orders-api" in page.url
    timeline = rows(page, "timeline")
    assert any("1.5.0 → 1.5.1" in r and "failed" in r for r in timeline), timeline
    assert any("→ 1.5.0" in r and "succeeded" in r and "orders-production" in r for r in timeline), timeline
    shot(page, "05-app")


def test_a_running_canary_updates_live(seeded, page):
    endpoints, _ = seeded
    sb_dir = Path(endpoints["dir"])
    push("payments-api:2.1.0", "ok", sb_dir, echo=quiet)
    with SandboxClient(endpoints) as client:
        running = client.wait_for("payments-api", "2.1.0", "payments-api", timeout_s=60, phases=RUNNING)
    open_with_key(page, endpoints, f"#/deployments/{running['id']}?app=payments-api")
    page.locator("#dep-live").wait_for(state="visible")
    before = len(rows(page, "story"))
    shot(page, "06-canary-running")
    page.locator("#dep-live").wait_for(state="hidden", timeout=90_000)  # no reload: the page polls
    assert "succeeded" in page.inner_text("#dep-facts")
    after = rows(page, "story")
    assert len(after) > before and any("25" in r for r in after), after
    shot(page, "07-canary-done")


def test_a_rollback_through_the_button_with_a_reason(seeded, page):
    endpoints, _ = seeded
    open_with_key(page, endpoints, "#/apps/orders-api")
    button = page.get_by_role("button", name="Roll back orders-api in sandbox")
    button.click()
    page.keyboard.press("Escape")  # cancelling asks nothing of the API
    assert not page.locator("#rbdialog").is_visible()
    button.click()
    page.fill("#rbform textarea[name=reason]", "checkout errors after 1.5.0")
    shot(page, "08-rollback-confirm")
    page.click("#rbform button.danger")
    page.wait_for_url(re.compile(r".*#/deployments/.*"))
    expect(page.locator("#dep-facts")).to_contain_text("succeeded", timeout=90_000)
    title = page.inner_text("#dep-title")
    assert title.startswith("orders-api: rollback to orders-api--"), title
    assert title.endswith("(1.0.0)"), "the seed revision runs orders-api:1.0.0 (seed.yaml): the version it restores"
    facts = page.inner_text("#dep-facts")
    assert "page: checkout errors after 1.5.0" in facts
    shot(page, "09-rollback-done")
    with SandboxClient(endpoints) as client:
        app = next(a for a in client.get("/apps")["items"] if a["app"] == "orders-api")
    assert title.removeprefix("orders-api: rollback to ").split(" ")[0] == app["live"]["revision"]
