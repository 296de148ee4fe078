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
from shared.services.rollout_records import Next, Recorder, RolloutPorts, parse

log = logging.getLogger("acr_deploy.rollout")

MAX_TRANSIENT = 8  # Azure back-offs per phase before the deployment gives up


class Endings:
    def __init__(self, ports: RolloutPorts, recorder: Recorder) -> None:
        self.ports = ports
        self.recorder = recorder

    # Every ending that changes Azure first records what it decided (`data["ending"]`, with the
    # attempts that decided it), then makes the change, then records the terminal phase. A process
    # killed between the change and the terminal record resumes the recorded ending (`resume`) on
    # the next delivery. Without that record the redelivery re-ran the phase's checks against an
    # app whose traffic had already gone back, saw them pass and promoted the failed revision to
    # 100 % (tests/scenario/test_crash_after_azure_change.py proves it).
    def _decide(self, d: Deployment, kind: str, reason: str, events: tuple | list,
                **extra: object) -> Deployment:
        d.data["ending"] = {"kind": kind, "reason": reason, **extra}
        return self.recorder.save(d, *events)

    def resume(self, d: Deployment) -> Next:
        """Finish the ending recorded before a crash (see `_decide`): its Azure changes are
        idempotent, and its reason is the one decided then."""
        ending = dict(d.data.get("ending") or {})
        kind, reason = ending.get("kind"), str(ending.get("reason") or "")
        if kind == "roll_back":
            return self._complete_roll_back(d, reason, resumed=True)
        if kind == "fail":
            return self._complete_fail(d, reason, (), resumed=True)
        if kind == "succeed":
            return self._complete_succeed(d, ending, [], resumed=True)
        if kind == "give_up":
            return self._complete_give_up(d, reason, resumed=True)
        return self.recorder.finish(d, Phase.FAILED, f"unknown recorded ending {kind!r}: {reason[:300]}")

    def succeed(self, d: Deployment, summary: str, events: list[DeploymentEvent]) -> Next:
        """Keep `keep_previous` earlier revisions warm, deactivate older ones. Best effort: a failure
        here is recorded but never fails a deployment that already serves."""
        now = self.ports.clock()
        ending: dict = {"summary": summary, "at": now.isoformat(), "doomed": [], "kept": [], "problems": []}
        try:
            info = self.ports.apps.get_app(d.target)
        except (TransientAzureError, PermanentAzureError) as exc:
            ending["problems"] = [f"(could not list revisions: {exc})"]
            return self._complete_succeed(d, ending, events)
        doomed = plan.deactivation_plan(info.revisions, d.revision, d.previous_traffic,
                                        d.rollout.keep_previous)
        ending["doomed"] = list(doomed)
        ending["kept"] = [r.name for r in info.revisions
                          if r.active and r.name != d.revision and r.name not in doomed]
        if doomed:  # Azure changes follow: record the plan first (nothing to resume otherwise)
            d = self._decide(d, "succeed", "", events, **{k: v for k, v in ending.items()})
            events = []
        return self._complete_succeed(d, ending, events)

    def _complete_succeed(self, d: Deployment, ending: dict, events: list[DeploymentEvent],
                          resumed: bool = False) -> Next:
        apps = self.ports.apps
        removed, problems = [], list(ending.get("problems") or [])
        for name in ending.get("doomed") or []:
            try:
                if resumed:  # deactivated before the crash: count it, do not ask twice
                    rev = apps.get_revision(d.target, name)
                    if rev is None or not rev.active:
                        removed.append(name)
                        continue
                apps.set_revision_active(d.target, name, False)
                removed.append(name)
            except (TransientAzureError, PermanentAzureError) as exc:
                problems.append(f"{name} ({str(exc)[:120]})")
        kept = list(ending.get("kept") or [])
        parts = [f"{d.revision} serves 100 % ({ending.get('summary', '')})"]
        if kept:
            parts.append(f"kept warm for rollback: {', '.join(kept)}")
        if removed:
            parts.append(f"deactivated: {', '.join(removed)}")
        if problems:
            parts.append(f"could not deactivate: {', '.join(problems)}")
        d.data.pop("ending", None)
        at = parse(ending.get("at")) or self.ports.clock()
        return self.recorder.finish(d, Phase.SUCCEEDED, "; ".join(parts), *events, at=at,
                                    kept=kept, deactivated=removed)

    def fail_before_shift(self, d: Deployment, reason: str, *events: DeploymentEvent) -> Next:
        """Nothing was shifted: the new revision (0 %) is deactivated, traffic was never touched."""
        if self._owns_new_revision(d):
            d = self._decide(d, "fail", reason, events)
            events = ()
        return self._complete_fail(d, reason, events)

    def _complete_fail(self, d: Deployment, reason: str, events: tuple, resumed: bool = False) -> Next:
        reason = reason + self._deactivate_new(d, resumed)
        d.data.pop("ending", None)
        return self.recorder.finish(d, Phase.FAILED, reason, *events)

    @staticmethod
    def _owns_new_revision(d: Deployment) -> bool:
        if not d.revision or (d.kind == DeploymentKind.ROLLBACK and not d.data.get("activated")):
            return False  # a rollback target that was already active stays as it was
        return d.phase != Phase.QUEUED

    def _deactivate_new(self, d: Deployment, resumed: bool = False) -> str:
        if not self._owns_new_revision(d):
            return ""
        try:
            if resumed:  # deactivated before the crash: say so, do not ask twice
                rev = self.ports.apps.get_revision(d.target, d.revision)
                if rev is None:
                    return ""
                if not rev.active:
                    return f"; {d.revision} deactivated"
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
        if not plan.rollback_table(d):
            return self.recorder.finish(d, Phase.FAILED, f"{reason}; nothing served before {d.revision}, "
                                        "so it keeps the traffic", *events)
        d = self._decide(d, "roll_back", reason, events)
        return self._complete_roll_back(d, reason)

    def _complete_roll_back(self, d: Deployment, reason: str, resumed: bool = False) -> Next:
        table = plan.rollback_table(d)
        self.ports.apps.set_traffic(d.target, table)  # the same table again is harmless
        suffix = self._deactivate_new(d, resumed)
        d.data.pop("ending", None)
        return self.recorder.finish(d, Phase.ROLLED_BACK,
                                    f"{reason}; traffic back to {traffic.describe(table)}{suffix}",
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
        # Decide first (see `_decide`): a worker killed after putting traffic back (or deactivating
        # the new revision) but before the FAILED record would otherwise re-run the phase on the
        # next delivery (or the sweeper's re-sent message) against the restored app, and could
        # promote what it had given up on (tests/scenario/test_crash_manual_rollback.py).
        d = self._decide(d, "give_up", reason, ())
        self._complete_give_up(d, reason)

    def _complete_give_up(self, d: Deployment, reason: str, resumed: bool = False) -> Next:
        try:
            if d.phase not in plan.SHIFTED:
                reason += self._deactivate_new(d, resumed)
            elif table := plan.rollback_table(d):
                self.ports.apps.set_traffic(d.target, table)  # the same table again is harmless
                reason += f"; traffic back to {traffic.describe(table)}"
        except Exception as again:  # noqa: BLE001 - recording the failure matters more
            reason += f"; could not restore the app: {type(again).__name__}"
        d.data.pop("ending", None)
        return self.recorder.finish(d, Phase.FAILED, reason)
