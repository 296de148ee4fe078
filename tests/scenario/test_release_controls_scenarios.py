"""Release controls end to end: Event Grid event -> intake -> Azurite queue -> worker -> emulator, with the
HTTP API (as function_app.py calls it) for the people's side and the local webhook receiver for chat.

Approval: the revision is created and smoke-checked at 0 %, waits, is approved through the API by a
signed-in name, then goes live; Teams and Slack heard about it. Freeze: a push inside a window leaves
the app untouched until the window ends (the worker's clock moved past it), a skip window records it
as skipped. Canary control: pause holds the weights, promote takes all traffic.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from devtools.chat_receiver import ChatReceiver
from shared.domain.model import Phase, utcnow
from shared.services.rulesource import RuleBook
from tests.scenario.conftest import assert_live

NOW = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
RULES = f"""\
version: 1
freezes:
  - {{name: change-freeze, start: "{NOW - timedelta(hours=1):%Y-%m-%d %H:%M}", end: "{NOW + timedelta(hours=1):%Y-%m-%d %H:%M}", rules: [frozen]}}
  - {{name: no-pushes, start: "{NOW - timedelta(hours=1):%Y-%m-%d %H:%M}", end: "{NOW + timedelta(hours=1):%Y-%m-%d %H:%M}", rules: [skipped], action: skip}}
rules:
  - name: approved
    repository: "appr-*"
    tags: "semver:*"
    targets: [{{app: "{{name}}", resource_group: RG}}]
    smoke: [{{path: /healthz, retries: 1, backoff: 100ms}}]
    approval: {{approvers: [ann@contoso.com], expires: 1h}}
    notify: [{{teams: TEST_TEAMS_URL}}, {{slack: TEST_SLACK_URL, kinds: [awaiting_approval, succeeded]}}]
  - name: watched
    repository: "watch-*"
    tags: "semver:*"
    targets: [{{app: "{{name}}", resource_group: RG}}]
    smoke: [{{path: /healthz, retries: 1, backoff: 100ms}}]
    notify: [{{teams: TEST_TEAMS_URL, kinds: [drift]}}]
  - name: frozen
    repository: "frz-*"
    tags: "semver:*"
    targets: [{{app: "{{name}}", resource_group: RG}}]
    smoke: [{{path: /healthz, retries: 1, backoff: 100ms}}]
  - name: skipped
    repository: "skp-*"
    tags: "semver:*"
    targets: [{{app: "{{name}}", resource_group: RG}}]
  - name: canary
    repository: "can-*"
    tags: "semver:*"
    targets: [{{app: "{{name}}", resource_group: RG}}]
    rollout: {{strategy: canary, steps: [10, 50, 100], bake: 1h, deadline: 3h}}
    smoke: [{{path: /healthz, retries: 1, backoff: 100ms}}]
"""


def use_rules(world, text: str, path) -> None:
    path.write_text(text.replace("RG", world.rg))
    c = world.container
    c.rules = RuleBook.from_settings(replace(c.settings, rules_file=str(path)), background=False)
    c.__dict__.pop("intake", None)  # built again on the new rules


@pytest.fixture
def controlled(world, tmp_path, monkeypatch):
    """The scenario world with these rules, and a webhook receiver behind the rules' app settings."""
    receiver = ChatReceiver().start()
    monkeypatch.setenv("TEST_TEAMS_URL", receiver.hook_url("teams-releases"))
    monkeypatch.setenv("TEST_SLACK_URL", receiver.hook_url("slack-releases"))
    use_rules(world, RULES, tmp_path / "controls.yaml")
    try:
        yield world, receiver
    finally:
        receiver.stop()


def control(world, d, action: str, reason: str, signed_in: str = "") -> tuple[int, dict]:
    headers = {"X-MS-CLIENT-PRINCIPAL-NAME": signed_in} if signed_in else {}
    result = world.container.api.handle(
        "control_deployment", method="POST", route_params={"id": d.id, "action": action},
        body=json.dumps({"reason": reason, "app": d.target.app}).encode(), headers=headers)
    return result.status, result.body


def wait_for(world, app: str, tag: str, phase: Phase, timeout_s: float = 20.0):
    world.driver.run(until=lambda: any(d.tag == tag and d.phase == phase for d in world.deployments(app)),
                     timeout_s=timeout_s)
    return world.deployment(app, tag)


def test_approval_is_asked_for_after_the_smoke_checks_and_given_through_the_api(controlled):
    world, receiver = controlled
    app = world.seed_app("appr")
    world.push(app, "1.0.0")
    d = wait_for(world, app, "1.0.0", Phase.AWAITING_APPROVAL)
    seed = f"{app}--seed"
    assert world.app_dump(app)["traffic"] == {seed: 100}
    assert world.revision(app, d.revision)["active"] and world.revision(app, d.revision)["requests"] >= 1
    hooks = [m["hook"] for m in receiver.messages]
    assert hooks == ["teams-releases", "slack-releases"]
    assert "is waiting for approval" in receiver.messages[1]["body"]["text"]

    status, body = control(world, d, "approve", "LGTM", signed_in="bob@contoso.com")
    assert status == 409 and "not one of the approvers" in body["error"]
    status, body = control(world, d, "approve", "release notes checked", signed_in="ann@contoso.com")
    assert status == 202 and body["phase"] == "awaiting_approval"
    world.run(app)
    done = world.deployment(app, "1.0.0")
    assert_live(world, app, done)
    story = world.story(done)
    assert "approve by bob@contoso.com: refused" in story
    assert "approved by ann@contoso.com: release notes checked" in story
    assert world.phases(done)[-4:] == ["awaiting_approval", "shifting", "verifying", "succeeded"]
    assert [m["hook"] for m in receiver.messages][2:] == ["slack-releases"]  # succeeded: slack asked for it


def test_a_push_in_a_freeze_leaves_the_app_untouched_until_the_window_ends(controlled):
    world, _ = controlled
    app = world.seed_app("frz")
    world.push(app, "1.0.0")
    d = wait_for(world, app, "1.0.0", Phase.FROZEN)
    assert [r["name"] for r in world.app_dump(app)["revisions"]] == [f"{app}--seed"]
    assert "frozen by change-freeze" in world.story(d)
    status, body = control(world, d, "approve", "no approval needed here")
    assert status == 409
    # 65 minutes later (the worker's clock): the window is over, and the held deployment's wake-up is
    # due; the sweeper (its timer) sends it now rather than the test waiting for Azurite's delay.
    world.container.rollout = world.container.rollout.with_ports(clock=lambda: utcnow() + timedelta(minutes=65))
    assert world.container.rollout.sweep()["resent"] >= 1
    world.driver.run(until=lambda: world.deployment(app, "1.0.0").phase.terminal, timeout_s=30)
    done = world.deployment(app, "1.0.0")
    assert done.phase == Phase.SUCCEEDED, world.story(done)
    assert world.app_dump(app)["traffic"] == {done.revision: 100}
    assert "the freeze window is over" in world.story(done)


def pushed_and_settled(world, prefix: str, tag: str = "1.0.0"):
    """A new app whose name the rules match by `prefix`, one push to it, run until it settles."""
    app = world.seed_app(prefix)
    world.push(app, tag)
    world.run(app)
    return app, world.deployment(app, tag)


def test_a_skip_window_records_the_push_as_skipped_and_creates_nothing(controlled):
    world, _ = controlled
    app, d = pushed_and_settled(world, "skp")
    assert d.phase == Phase.SKIPPED and "frozen by no-pushes" in d.reason, world.story(d)
    assert [r["name"] for r in world.app_dump(app)["revisions"]] == [f"{app}--seed"]


def test_an_emergency_override_lets_one_deployment_through_the_freeze(controlled):
    world, _ = controlled
    app = world.seed_app("frz")
    world.push(app, "1.0.1")
    d = wait_for(world, app, "1.0.1", Phase.FROZEN)
    status, _ = control(world, d, "override_freeze", "hotfix for INC-42", signed_in="oncall@contoso.com")
    assert status == 202
    world.run(app)
    done = world.deployment(app, "1.0.1")
    assert_live(world, app, done)
    assert "freeze overridden by oncall@contoso.com: hotfix for INC-42" in world.story(done)


def test_a_paused_canary_holds_its_weights_and_promote_takes_all_traffic(controlled):
    world, _ = controlled
    app = world.seed_app("can")
    world.push(app, "2.0.0")
    d = wait_for(world, app, "2.0.0", Phase.VERIFYING)  # 10 %, baking an hour
    status, _ = control(world, d, "pause", "watching the error rate")
    assert status == 202
    paused = wait_for(world, app, "2.0.0", Phase.PAUSED)
    seed = f"{app}--seed"
    assert world.app_dump(app)["traffic"] == {seed: 90, paused.revision: 10}
    status, _ = control(world, paused, "promote", "error rate is flat")
    assert status == 202
    world.run(app)
    done = world.deployment(app, "2.0.0")
    assert_live(world, app, done)
    shifts = [e.data["traffic"] for e in world.store.list_events(done.id) if "traffic" in e.data
              and e.phase == Phase.VERIFYING]
    assert shifts == [{seed: 90, done.revision: 10}, {done.revision: 100}]


PROMOTION = """\
version: 1
rules:
  - name: staging
    repository: STG
    tags: "semver:*"
    targets: [{app: STG, resource_group: RG}]
    smoke: [{path: /healthz, retries: 1, backoff: 100ms}]
    promote: {to: PRD, after: 30m}
  - name: production
    repository: STG
    tags: {semver: ">=1.0.0"}
    targets: [{app: PRD, resource_group: RG}]
    smoke: [{path: /healthz, retries: 1, backoff: 100ms}]
    approval: {approvers: [ann@contoso.com], expires: 2h}
    promotion_only: true
"""


def test_a_digest_live_on_staging_is_promoted_to_production_after_its_soak_through_its_approval(world, tmp_path):
    stg, prd = world.seed_app("stg"), world.seed_app("prd")
    use_rules(world, PROMOTION.replace("STG", stg).replace("PRD", prd), tmp_path / "promotion.yaml")
    world.push(stg, "1.2.0")  # a push: production's rule takes promotions only
    world.driver.run(until=lambda: len(world.deployments(prd)) == 1, timeout_s=30)
    source = world.deployment(stg, "1.2.0")
    assert_live(world, stg, source)
    (promoted,) = world.deployments(prd)
    assert promoted.phase == Phase.QUEUED and promoted.progress.controls.promoted_from == source.id
    assert world.deployment(stg, "1.2.0").progress.controls.promoted_to == (promoted.id,)
    assert f"promoted to {prd}: deployment {promoted.id}" in world.story(source)
    assert world.app_dump(prd)["traffic"] == {f"{prd}--seed": 100}  # soaking: nothing yet

    # 31 minutes on (the worker's clock; the sweeper sends the due wake-up): production's own gates.
    world.container.rollout = world.container.rollout.with_ports(clock=lambda: utcnow() + timedelta(minutes=31))
    world.container.rollout.sweep()
    d = wait_for(world, prd, "1.2.0", Phase.AWAITING_APPROVAL)
    assert "soak time over" in world.story(d)
    status, _ = control(world, d, "approve", "staging looked good", signed_in="ann@contoso.com")
    assert status == 202
    world.run(prd)
    done = world.deployment(prd, "1.2.0")
    assert_live(world, prd, done)
    assert done.digest == source.digest and done.image == source.image
    page = world.container.api.handle("get_deployment", route_params={"id": done.id}, params={"app": prd}).body
    assert page["data"]["controls"]["promoted_from"] == source.id  # what the page links


def test_drift_on_a_live_app_is_told_to_the_rule_s_chat_once(controlled):
    world, receiver = controlled
    app, d = pushed_and_settled(world, "watch")
    assert receiver.messages == []  # the rule asked for drift only
    assert world.container.container_apps.set_traffic(d.target, {f"{app}--seed": 100}) is True  # by hand
    world.container.drift.reconcile_app(d.target)
    world.container.drift.reconcile_app(d.target)  # the same drift again: told once
    (message,) = receiver.messages
    card = message["body"]["attachments"][0]["content"]["body"]
    assert card[0]["text"] == f"{app}:1.0.0 on {app} drifted from its recorded revision"
    why = {f["title"]: f["value"] for f in card[1]["facts"]}["Why"]
    assert why.startswith("drift: ") and f"{app}--seed 100 %" in why
