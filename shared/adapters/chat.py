"""Chat notifications: Microsoft Teams (workflow webhook) and Slack (incoming webhook), per rule.

A rule's `notify:` names app settings (a Key Vault reference in Azure) that hold the webhook URLs;
this adapter reads them at send time and never logs or records them: a webhook URL is a credential.
It is an `OutcomePublisher`, so the rollout announces to it exactly what it announces to the
CloudEvents topic (`FanOutPublisher` sends to both). Best effort, bounded: a few attempts with
exponential back-off (429 and 5xx and transport errors; `Retry-After` honoured up to a cap), then a
warning in the log. A failing webhook never fails or delays a rollout beyond `budget_s`.

Payloads: Teams workflows ("When a Teams webhook request is received") take a message with an
Adaptive Card attachment; Slack incoming webhooks take `{"text": ...}` (mrkdwn).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable

import httpx

from shared.domain.controls import ChatHook, ChatService, Notice
from shared.domain.model import Deployment

log = logging.getLogger("acr_deploy.chat")

# The CloudEvent types the rollout announces -> what a person reads in chat.
NOTICE_OF_EVENT = {
    "AcrDeploy.Deployment.Succeeded": Notice.SUCCEEDED,
    "AcrDeploy.Deployment.Failed": Notice.FAILED,
    "AcrDeploy.Deployment.RolledBack": Notice.ROLLED_BACK,
    "AcrDeploy.Deployment.AwaitingApproval": Notice.AWAITING_APPROVAL,
    "AcrDeploy.Deployment.Frozen": Notice.FROZEN,
    "AcrDeploy.App.Drifted": Notice.DRIFT,
}
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
_HEADLINE = {
    Notice.SUCCEEDED: "is live", Notice.FAILED: "failed", Notice.ROLLED_BACK: "was rolled back",
    Notice.AWAITING_APPROVAL: "is waiting for approval", Notice.FROZEN: "is held by a freeze window",
    Notice.DRIFT: "drifted from its recorded revision",
}


def message_text(notice: Notice, d: Deployment) -> tuple[str, list[tuple[str, str]], str]:
    """(headline, facts, what to do) for one notice: the same words in Teams and Slack."""
    image = f"{d.repository}:{d.tag}" if d.repository else d.image
    headline = f"{image} on {d.target.app} {_HEADLINE[notice]}"
    facts = [("Deployment", d.id), ("App", f"{d.target.resource_group}/{d.target.app}"),
             ("Revision", d.revision or "-"), ("Rule", d.rule or "-"), ("Why", d.reason or "-")]
    if d.pushed_by:
        facts.append(("Pushed by", d.pushed_by))
    todo = ""
    if notice is Notice.AWAITING_APPROVAL:
        todo = f"acr-deploy approve {d.id} --reason ... (or reject), or the history page"
    return headline, facts, todo


def teams_payload(notice: Notice, d: Deployment) -> dict[str, Any]:
    headline, facts, todo = message_text(notice, d)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": headline, "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts]},
    ]
    if todo:
        body.append({"type": "TextBlock", "text": todo, "wrap": True})
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body}
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def slack_payload(notice: Notice, d: Deployment) -> dict[str, Any]:
    headline, facts, todo = message_text(notice, d)
    lines = [f"*{headline}*", *(f"{k}: `{v}`" if k in ("Deployment", "Revision") else f"{k}: {v}"
                                for k, v in facts)]
    if todo:
        lines.append(todo)
    return {"text": "\n".join(lines)}


_PAYLOAD = {ChatService.TEAMS: teams_payload, ChatService.SLACK: slack_payload}


class ChatNotifier:
    def __init__(
        self, setting: Callable[[str], str | None], *, client: httpx.Client | None = None,
        attempts: int = 3, backoff_s: float = 0.5, max_retry_after_s: float = 5.0, budget_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._setting = setting
        self._client = client or httpx.Client(timeout=httpx.Timeout(5.0), follow_redirects=False)
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s
        self._max_retry_after_s = max_retry_after_s
        self._budget_s = budget_s
        self._sleep = sleep
        self._monotonic = monotonic

    def publish(self, event_type: str, deployment: Deployment) -> None:
        notice = NOTICE_OF_EVENT.get(event_type)
        if notice is None:
            return
        for hook in hooks_for(deployment.rollout.controls.notify, notice):
            try:
                self.send(hook, notice, deployment)
            except Exception as exc:  # noqa: BLE001 - best effort by design; the URL never logged
                log.warning("chat %s via %s for %s failed: %s", notice, hook.setting, deployment.id,
                            type(exc).__name__)

    def send(self, hook: ChatHook, notice: Notice, d: Deployment) -> bool:
        """True when the webhook took it. Never raises for an HTTP or transport failure."""
        url = (self._setting(hook.setting) or "").strip()
        if not url.lower().startswith(("https://", "http://")):
            log.warning("chat %s for %s: app setting %s is not set to a webhook URL", notice, d.id, hook.setting)
            return False
        payload = _PAYLOAD[hook.service](notice, d)
        started = self._monotonic()
        for attempt in range(1, self._attempts + 1):
            wait = self._backoff_s * 2 ** (attempt - 1)
            try:
                response = self._client.post(url, json=payload)
                if 200 <= response.status_code < 300:
                    return True
                what = f"HTTP {response.status_code}"
                if response.status_code not in RETRYABLE:
                    break
                wait = max(wait, min(_retry_after(response), self._max_retry_after_s))
            except httpx.HTTPError as exc:
                what = type(exc).__name__
            if attempt == self._attempts or self._monotonic() - started + wait > self._budget_s:
                break
            self._sleep(wait)
        log.warning("chat %s via %s for %s not delivered (%s, attempt %d)", notice, hook.setting, d.id,
                    what, attempt)
        return False

    def close(self) -> None:
        self._client.close()


def hooks_for(hooks: Iterable[ChatHook], notice: Notice) -> list[ChatHook]:
    return [h for h in hooks if notice in h.on]


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


class FanOutPublisher:
    """Announces to every publisher (CloudEvents topic, chat); one failing never stops the others."""

    def __init__(self, *publishers: Any) -> None:
        self.publishers = publishers

    def publish(self, event_type: str, deployment: Deployment) -> None:
        for p in self.publishers:
            try:
                p.publish(event_type, deployment)
            except Exception as exc:  # noqa: BLE001 - publishers are best effort
                log.warning("publishing %s for %s failed: %s", event_type, deployment.id, type(exc).__name__)

    def close(self) -> None:
        for p in self.publishers:
            close = getattr(p, "close", None)
            if callable(close):
                close()
