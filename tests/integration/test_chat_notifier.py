"""Teams and Slack notifications through the real httpx client against the local webhook receiver."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from devtools.chat_receiver import ChatReceiver
from shared.adapters.chat import ChatNotifier, FanOutPublisher
from shared.domain.controls import ChatHook, ChatService, Notice, ReleaseControls
from shared.domain.model import Deployment, DeploymentKind, Phase, RolloutSettings, Target

NOW = datetime(2026, 12, 2, 6, 0, tzinfo=timezone.utc)


@pytest.fixture
def receiver():
    r = ChatReceiver().start()
    yield r
    r.stop()


def deployment(*hooks: ChatHook, phase: Phase = Phase.FAILED) -> Deployment:
    return Deployment(
        id="20261202060000-abc", target=Target("sub", "rg", "orders-api"), kind=DeploymentKind.PUSH,
        phase=phase, created_at=NOW, updated_at=NOW, image="reg/orders-api@sha256:" + "a" * 64,
        repository="orders-api", tag="1.5.0", revision="orders-api--v1-5-0", rule="orders",
        reason="smoke check failed", rollout=RolloutSettings(controls=ReleaseControls(notify=hooks)),
    )


def notifier(receiver: ChatReceiver, slept: list[float], **kwargs) -> ChatNotifier:
    settings = {"TEAMS_URL": receiver.hook_url("teams-releases"), "SLACK_URL": receiver.hook_url("slack-releases")}
    return ChatNotifier(settings.get, sleep=slept.append, **kwargs)


def test_teams_gets_an_adaptive_card_and_slack_text_for_the_kinds_they_asked_for(receiver):
    slept: list[float] = []
    d = deployment(ChatHook(ChatService.TEAMS, "TEAMS_URL"),
                   ChatHook(ChatService.SLACK, "SLACK_URL", (Notice.SUCCEEDED,)))
    notifier(receiver, slept).publish("AcrDeploy.Deployment.Failed", d)
    assert [m["hook"] for m in receiver.messages] == ["teams-releases"]  # slack wants successes only
    card = receiver.messages[0]["body"]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"] == "orders-api:1.5.0 on orders-api failed"
    notifier(receiver, slept).publish("AcrDeploy.Deployment.Succeeded", d)
    assert receiver.messages[1]["hook"] == "slack-releases"
    assert receiver.messages[1]["body"]["text"].startswith("*orders-api:1.5.0 on orders-api is live*")
    assert slept == []


def test_retries_with_back_off_and_honours_retry_after(receiver):
    import httpx

    slept: list[float] = []
    httpx.post(f"{receiver.url}/faults", json={"hook": "slack-releases", "status": 429, "times": 2, "retry_after": 2})
    d = deployment(ChatHook(ChatService.SLACK, "SLACK_URL", (Notice.FAILED,)))
    assert notifier(receiver, slept).send(d.rollout.controls.notify[0], Notice.FAILED, d) is True
    assert slept == [2.0, 2.0]  # Retry-After (2 s) beats the back-off (0.5 s, then 1 s)
    assert len(receiver.messages) == 1


def test_a_failing_or_missing_webhook_is_logged_without_its_url_and_never_raises(receiver, caplog):
    import httpx

    slept: list[float] = []
    httpx.post(f"{receiver.url}/faults", json={"hook": "teams-releases", "status": 503, "times": 10})
    d = deployment(ChatHook(ChatService.TEAMS, "TEAMS_URL"), ChatHook(ChatService.SLACK, "UNSET_URL"))
    publisher = FanOutPublisher(notifier(receiver, slept, attempts=3))
    publisher.publish("AcrDeploy.Deployment.Failed", d)
    assert receiver.messages == [] and slept == [0.5, 1.0]
    text = caplog.text
    assert "HTTP 503, attempt 3" in text and "UNSET_URL is not set" in text
    assert receiver.url not in text


def test_a_client_error_is_not_retried(receiver):
    slept: list[float] = []
    d = deployment(ChatHook(ChatService.SLACK, "WRONG"))
    n = ChatNotifier({"WRONG": f"{receiver.url}/nowhere/x"}.get, sleep=slept.append)
    assert n.send(d.rollout.controls.notify[0], Notice.FAILED, d) is False
    assert slept == []
