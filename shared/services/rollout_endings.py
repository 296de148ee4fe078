"""How a rollout ends: succeed (with clean-up), fail before the shift, roll back, be superseded or
expire; and what Azure's errors mean for it (transient: back off; permanent: fail or roll back).

Every ending records the terminal phase, frees the app and publishes (`Recorder.finish`).
"""

from __future__ import annotations

import logging

from shared.domain import rollout as plan
from shared.domain import traffic
from shared.domain.model import Deployment, DeploymentEvent, DeploymentKind, Phase
from shared.ports import PermanentAzureError, TransientAzureError
from shared.services.rollout_records import Next, Recorder, RolloutPorts

log = logging.getLogger("acr_deploy.rollout")

MAX_TRANSIENT = 8  # Azure back-offs per phase before the deployment gives up


class Endings:
    def __init__(self, ports: RolloutPorts, recorder: Recorder) -> None:
        self.ports = ports
        self.recorder = recorder

    def succeed(self, d: Deployment, summary: str, events: list[DeploymentEvent]) -> Next:
        now = self.ports.clock()
        kept, removed, problems = self._clean_up(d)
        parts = [f"{d.revision} serves 100 % ({summary})"]
        if kept:
            parts.append(f"kept warm for rollback: {', '.join(kept)}")
        if removed:
            parts.append(f"deactivated: {', '.join(removed)}")
        if problems:
            parts.append(f"could not deactivate: {', '.join(problems)}")
        return self.recorder.finish(d, Phase.SUCCEEDED, "; ".join(parts), *events, at=now,
                                    kept=kept, deactivated=removed)

    def _clean_up(self, d: Deployment) -> tuple[list[str], list[str], list[str]]:
        """Keep `keep_previous` earlier revisions warm, deactivate older ones. Best effort: a failure
        here is recorded but never fails a deployment that already serves."""
        apps = self.ports.apps
        try:
            info = apps.get_app(d.target)
        except (TransientAzureError, PermanentAzureError) as exc:
            return [], [], [f"(could not list revisions: {exc})"]
        doomed = plan.deactivation_plan(info.revisions, d.revision, d.previous_traffic,
                                        d.rollout.keep_previous)
        active = [r.name for r in info.revisions if r.active and r.name != d.revision]
        removed, problems = [], []
        for name in doomed:
            try:
                apps.set_revision_active(d.target, name, False)
                removed.append(name)
            except (TransientAzureError, PermanentAzureError) as exc:
                problems.append(f"{name} ({str(exc)[:120]})")
        kept = [n for n in active if n not in doomed]
        return kept, removed, problems

    def fail_before_shift(self, d: Deployment, reason: str, *events: DeploymentEvent) -> Next:
        """Nothing was shifted: the new revision (0 %) is deactivated, traffic was never touched."""
        reason = reason + self._deactivate_new(d)
        return self.recorder.finish(d, Phase.FAILED, reason, *events)

    def _deactivate_new(self, d: Deployment) -> str:
        if not d.revision or (d.kind == DeploymentKind.ROLLBACK and not d.data.get("activated")):
            return ""  # a rollback target that was already active stays as it was
        if d.phase == Phase.QUEUED:
            return ""
        try:
            self.ports.apps.set_revision_active(d.target, d.revision, False)
            return f"; {d.revision} deactivated"
        except PermanentAzureError as exc:
            if exc.status == 404:
                return ""
            return f"; could not deactivate {d.revision}: {str(exc)[:200]}"
        except TransientAzureError as exc:
            return f"; could not deactivate {d.revision} now ({str(exc)[:120]}); the next clean-up will"

    def roll_back(self, d: Deployment, reason: str, *events: DeploymentEvent) -> Next:
        """Traffic returns to what served before; the new revision is deactivated."""
        table = plan.rollback_table(d)
        if not table:
            return self.recorder.finish(d, Phase.FAILED, f"{reason}; nothing served before {d.revision}, "
                                        "so it keeps the traffic", *events)
        self.ports.apps.set_traffic(d.target, table)
        suffix = self._deactivate_new(d)
        return self.recorder.finish(d, Phase.ROLLED_BACK,
                                    f"{reason}; traffic back to {traffic.describe(table)}{suffix}", *events,
                                    traffic=table)

    def supersede(self, d: Deployment, newer: str) -> Next:
        reason = f"superseded by newer deployment {newer} before its traffic shift" + self._deactivate_new(d)
        return self.recorder.finish(d, Phase.SUPERSEDED, reason)

    def expire(self, d: Deployment) -> Next:
        reason = f"deadline passed ({d.rollout.deadline_s:g} s) while {d.phase}"
        try:
            if d.phase in plan.SHIFTED:
                return self.roll_back(d, reason)
            return self.fail_before_shift(d, reason)
        except (TransientAzureError, PermanentAzureError) as exc:
            return self.recorder.finish(d, Phase.FAILED, f"{reason}; clean-up failed: {str(exc)[:200]}")

    def transient(self, d: Deployment, exc: TransientAzureError) -> Next:
        attempts = d.attempts + 1
        if attempts > MAX_TRANSIENT:
            return self.permanent(d, PermanentAzureError(f"Azure kept failing: {exc}"))
        delay = max(exc.retry_after_s or 0.0, min(0.5 * 2 ** (attempts - 1), 30.0))
        d = d.evolve(attempts=attempts)
        d = self.recorder.save(d, plan.note(d, f"Azure is busy ({str(exc)[:200]}); retry {attempts} in "
                                               f"{delay:g} s", self.ports.clock(), retry_after_s=delay))
        return Next(d, delay)

    def permanent(self, d: Deployment, exc: PermanentAzureError) -> Next:
        reason = f"Azure refused: {str(exc)[:500]}"
        if d.phase in plan.SHIFTED:
            try:
                return self.roll_back(d, reason)
            except (TransientAzureError, PermanentAzureError) as again:
                reason += f"; rolling back failed too: {str(again)[:200]}"
                return self.recorder.finish(d, Phase.FAILED, reason)
        if d.phase == Phase.QUEUED:
            return self.recorder.finish(d, Phase.FAILED, reason)
        return self.fail_before_shift(d, reason)

    def give_up(self, deployment_id: str, exc: BaseException, dequeue_count: int,
                app: str | None = None) -> None:
        """The last delivery of a message that kept failing: record FAILED with the error (never let
        it vanish into the poison queue), put traffic back if it had moved, free the app."""
        log.error("rollout %s: giving up after %d deliveries: %s: %s", deployment_id, dequeue_count,
                  type(exc).__name__, str(exc)[:300])
        d = self.ports.store.get_deployment(deployment_id, app=app)
        if d is None or d.phase.terminal:
            if d is not None:
                self.recorder.settle(d)
            return
        reason = f"a step kept failing ({dequeue_count} deliveries): {type(exc).__name__}: {str(exc)[:400]}"
        try:
            if d.phase not in plan.SHIFTED:
                reason += self._deactivate_new(d)
            elif table := plan.rollback_table(d):
                self.ports.apps.set_traffic(d.target, table)
                reason += f"; traffic back to {traffic.describe(table)}"
        except Exception as again:  # noqa: BLE001 - recording the failure matters more
            reason += f"; could not restore the app: {type(again).__name__}"
        self.recorder.finish(d, Phase.FAILED, reason)
