"""Promotion between apps: `promote: {to: orders-api, after: 30m}` on a rule.

When a deployment of such a rule succeeds, the same digest is planned for the promotion's app by
intake, through that app's own rules (its approval and freeze windows apply), and queued to start
after the soak time (`ControlProgress.not_before`; the worker's gate checks then that the source
still serves its app, else the promotion is skipped). The history links the chain both ways:
`promoted_from` on the new deployment, `promoted_to` plus a history line on the source.

An `OutcomePublisher`: the rollout announces a success to it exactly as to the CloudEvents topic.
Announcements are best effort, so a promotion that could not be recorded (storage down at that
moment) is logged and left out; it is never half-made (intake's record is one transaction).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Callable

from shared.domain import rollout as plan
from shared.domain.model import Deployment, DeploymentKind
from shared.ports import ConcurrencyError

log = logging.getLogger("acr_deploy.promotion")

SUCCEEDED_EVENT = "AcrDeploy.Deployment.Succeeded"


class Promoter:
    def __init__(self, intake: Callable[[], Any], store: Any, clock: Callable[[], Any]) -> None:
        self._intake = intake  # a provider: intake (and its rules) is built only when a promotion is due
        self.store = store
        self.clock = clock

    def publish(self, event_type: str, deployment: Deployment) -> None:
        if event_type != SUCCEEDED_EVENT or deployment.kind != DeploymentKind.PUSH:
            return
        for promotion in deployment.rollout.controls.promote:
            try:
                outcomes = self._intake().promote(deployment, promotion)
                self._link(deployment, promotion.to, outcomes)
            except Exception as exc:  # noqa: BLE001 - an announcement never fails the rollout
                log.warning("promotion of %s to %s failed: %s: %s", deployment.id, promotion.to,
                            type(exc).__name__, str(exc)[:300])

    def _link(self, source: Deployment, to: str, outcomes: list[Any]) -> None:
        """Write the chain on the source: a history line and `promoted_to` (ETag, bounded retries)."""
        made = [o.deployment_id for o in outcomes if o.verdict in ("accepted", "recorded")]
        if made:
            message = f"promoted to {to}: deployment {', '.join(made)}"
        elif outcomes:
            message = f"not promoted to {to}: " + "; ".join(o.reason for o in outcomes)
        else:
            message = f"not promoted to {to}: no rule deploys {source.repository}:{source.tag} to {to}"
        for _ in range(5):
            current = self.store.get_deployment(source.id, app=source.target.app) or source
            controls = current.progress.controls
            if set(made) <= set(controls.promoted_to) and made:
                return  # announced twice: already linked
            linked = current.with_progress(controls=replace(
                controls, promoted_to=tuple(dict.fromkeys((*controls.promoted_to, *made)))))
            try:
                self.store.save_deployment(linked, plan.note(current, message, self.clock(), promoted_to=made))
                return
            except ConcurrencyError:
                continue
        log.warning("promotion link on %s not recorded (kept changing): %s", source.id, message)
