"""How a rollout ends: succeed (with clean-up), fail before the shift, roll back, be superseded or
expire; and what Azure's errors mean for it (transient: back off; permanent: fail or roll back).

Every ending that changes Azure is first recorded as decided (`progress.ending`, with the attempts that
decided it), then carried out (`Then`: the loop runs it after the record), then recorded as the terminal
phase. A process killed between the change and the terminal record resumes the recorded ending
(`resume`) on the next delivery. Without that record the redelivery re-ran the phase's checks against an
app whose traffic had already gone back, saw them pass and promoted the failed revision to 100 %
(tests/scenario/test_crash_after_azure_change.py proves it).
"""

from __future__ import annotations

import logging
from typing import Sequence

from shared.domain import rollout as plan
from shared.domain import traffic
from shared.domain.model import Deployment, DeploymentEvent, DeploymentKind, Phase
from shared.domain.progress import Ending, EndingKind
from shared.ports import REVISION_HAS_LABEL, PermanentAzureError, TransientAzureError
from shared.services.rollout.bluegreen import BlueGreenSteps
from shared.services.rollout.context import RolloutContext
from shared.services.rollout.step import Step, Then, Wait, finish, recorded

log = logging.getLogger("acr_deploy.rollout")

MAX_TRANSIENT = 8  # Azure back-offs per phase before the deployment gives up


class Endings:
    def __init__(self, ctx: RolloutContext) -> None:
        self.ctx = ctx
        self.blue_green = BlueGreenSteps(ctx)

    def _decide(self, d: Deployment, ending: Ending, events: Sequence[DeploymentEvent], then: Then) -> Step:
        """Record `ending` (with `events`), then carry it out."""
        return recorded(d.with_progress(ending=ending), *events, next=then)

    def resume(self, d: Deployment, ending: Ending) -> Step:
        """Finish the ending recorded before a crash (see `_decide`): its Azure changes are
        idempotent, and its reason is the one decided then."""
        if ending.kind == EndingKind.ROLL_BACK:
            return self._complete_roll_back(d, ending.reason, resumed=True)
        if ending.kind == EndingKind.FAIL:
            return self._complete_fail(d, ending.reason, (), resumed=True)
        if ending.kind == EndingKind.SUCCEED:
            return self._complete_succeed(d, ending, (), resumed=True)
        if ending.kind == EndingKind.GIVE_UP:
            return self._complete_give_up(d, ending.reason, resumed=True)
        return self._finish(d.with_progress(ending=None), Phase.FAILED, ending.reason)

    def _finish(self, d: Deployment, phase: Phase, reason: str, *events: DeploymentEvent,
                **data: object) -> Step:
        return finish(d, phase, reason, self.ctx.clock(), *events, **data)

    # ------------------------------------------------------------------ success
    def succeed(self, d: Deployment, summary: str, events: Sequence[DeploymentEvent]) -> Step:
        """Keep `keep_previous` earlier revisions warm, deactivate older ones. Best effort: a failure
        here is recorded but never fails a deployment that already serves."""
        now = self.ctx.clock()
        try:
            info = self.ctx.apps.get_app(d.target)
        except (TransientAzureError, PermanentAzureError) as exc:
            ending = Ending(EndingKind.SUCCEED, summary=summary, at=now,
                            problems=(f"(could not list revisions: {exc})",))
            return self._complete_succeed(d, ending, events)
        doomed = tuple(plan.deactivation_plan(info.revisions, d.revision, d.previous_traffic,
                                              d.rollout.keep_previous))
        kept = tuple(r.name for r in info.revisions
                     if r.active and r.name != d.revision and r.name not in doomed)
        ending = Ending(EndingKind.SUCCEED, summary=summary, at=now, doomed=doomed, kept=kept)
        if doomed:  # Azure changes follow: record the plan first (nothing to resume otherwise)
            return self._decide(d, ending, events, Then(lambda saved: self._complete_succeed(saved, ending, ())))
        return self._complete_succeed(d, ending, events)

    def _complete_succeed(self, d: Deployment, ending: Ending, events: Sequence[DeploymentEvent],
                          resumed: bool = False) -> Step:
        apps = self.ctx.apps
        removed, problems = [], list(ending.problems)
        for name in ending.doomed:
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
        kept = list(ending.kept)
        parts = [f"{d.revision} serves 100 % ({ending.summary})"]
        if kept:
            parts.append(f"kept warm for rollback: {', '.join(kept)}")
        if removed:
            parts.append(f"deactivated: {', '.join(removed)}")
        if problems:
            parts.append(f"could not deactivate: {', '.join(problems)}")
        return finish(d.with_progress(ending=None), Phase.SUCCEEDED, "; ".join(parts),
                      ending.at or self.ctx.clock(), *events, kept=kept, deactivated=removed)

    # ------------------------------------------------------------------ before the shift
    def fail_before_shift(self, d: Deployment, reason: str, *events: DeploymentEvent) -> Step:
        """Nothing was shifted: the new revision (0 %) is deactivated, traffic was never touched."""
        if self._owns_new_revision(d):
            return self._decide(d, Ending(EndingKind.FAIL, reason), events,
                                Then(lambda saved: self._complete_fail(saved, reason, ())))
        return self._complete_fail(d, reason, events)

    def _complete_fail(self, d: Deployment, reason: str, events: Sequence[DeploymentEvent],
                       resumed: bool = False) -> Step:
        reason = reason + self._deactivate_new(d, resumed)
        return self._finish(d.with_progress(ending=None), Phase.FAILED, reason, *events)

    @staticmethod
    def _owns_new_revision(d: Deployment) -> bool:
        if not d.revision or (d.kind == DeploymentKind.ROLLBACK and not d.progress.activated):
            return False  # a rollback target that was already active stays as it was
        return d.phase != Phase.QUEUED

    def _deactivate_new(self, d: Deployment, resumed: bool = False) -> str:
        if not self._owns_new_revision(d):
            return ""
        apps = self.ctx.apps
        try:
            unlabelled = self.blue_green.unlabel_new(d) if d.progress.blue_green is not None else ""
            if resumed:  # deactivated before the crash: say so, do not ask twice
                rev = apps.get_revision(d.target, d.revision)
                if rev is None:
                    return ""
                if not rev.active:
                    return f"{unlabelled}; {d.revision} deactivated"
            apps.set_revision_active(d.target, d.revision, False)
            return f"{unlabelled}; {d.revision} deactivated"
        except PermanentAzureError as exc:
            if exc.status == 404:
                return ""
            if exc.code == REVISION_HAS_LABEL:  # a label survives: its revision stays active
                return f"; {d.revision} left active: a traffic label points at it ({str(exc)[:200]})"
            return f"; could not deactivate {d.revision}: {str(exc)[:200]}"
        except TransientAzureError as exc:
            return f"; could not deactivate {d.revision} now ({str(exc)[:120]}); the next clean-up will"

    # ------------------------------------------------------------------ after the shift
    def roll_back(self, d: Deployment, reason: str, *events: DeploymentEvent,
                  if_it_fails: str = "") -> Step:
        """Traffic returns to what served before; the new revision is deactivated. `if_it_fails`:
        an Azure error while putting traffic back records FAILED with this text and the error
        (empty: the step's usual answer to Azure errors)."""
        if not plan.rollback_table(d):
            return self._finish(d, Phase.FAILED, f"{reason}; nothing served before {d.revision}, "
                                "so it keeps the traffic", *events)

        def failed(saved: Deployment, exc: Exception) -> Step:
            if isinstance(exc, TransientAzureError) and saved.attempts < MAX_TRANSIENT:
                # Azure is still applying an earlier change (a traffic shift in progress answers
                # 409) or is busy: the roll-back is recorded as decided, so back off and resume it
                # rather than end FAILED with the traffic wherever the earlier change left it.
                return self.transient(saved, exc)
            return self._finish(saved.with_progress(ending=None), Phase.FAILED,
                                f"{if_it_fails.format(reason=reason)}: {str(exc)[:200]}")

        return self._decide(d, Ending(EndingKind.ROLL_BACK, reason), events,
                            Then(lambda saved: self._complete_roll_back(saved, reason),
                                 on_error=failed if if_it_fails else None))

    def _complete_roll_back(self, d: Deployment, reason: str, resumed: bool = False) -> Step:
        table = plan.rollback_table(d)
        suffix = self._restore_traffic(d, table)  # the same table again is harmless
        suffix += self._deactivate_new(d, resumed)
        return self._finish(d.with_progress(ending=None), Phase.ROLLED_BACK,
                            f"{reason}; traffic back to {traffic.describe(table)}{suffix}", traffic=table)

    def _restore_traffic(self, d: Deployment, table: dict[str, int]) -> str:
        """Traffic back to `table` (blue/green: and the labels where they were); a history suffix."""
        if d.progress.blue_green is not None:
            return self.blue_green.restore(d, table)
        self.ctx.apps.set_traffic(d.target, table)
        return ""

    # ------------------------------------------------------------------ interruptions
    def supersede(self, d: Deployment, newer: str) -> Step:
        reason = f"superseded by newer deployment {newer} before its traffic shift" + self._deactivate_new(d)
        return self._finish(d, Phase.SUPERSEDED, reason)

    def expire(self, d: Deployment) -> Step:
        reason = f"deadline passed ({d.rollout.deadline_s:g} s) while {d.phase}"
        if plan.has_shifted(d):
            return self.roll_back(d, reason, if_it_fails="{reason}; clean-up failed")
        return self.fail_before_shift(d, reason)

    def transient(self, d: Deployment, exc: TransientAzureError) -> Step:
        attempts = d.attempts + 1
        if attempts > MAX_TRANSIENT:
            return self.permanent(d, PermanentAzureError(f"Azure kept failing: {exc}"))
        delay = max(exc.retry_after_s or 0.0, min(0.5 * 2 ** (attempts - 1), 30.0))
        d = d.evolve(attempts=attempts)
        return recorded(d, plan.note(d, f"Azure is busy ({str(exc)[:200]}); retry {attempts} in "
                                        f"{delay:g} s", self.ctx.clock(), retry_after_s=delay),
                        next=Wait(delay))

    def permanent(self, d: Deployment, exc: PermanentAzureError) -> Step:
        reason = f"Azure refused: {str(exc)[:500]}"
        if plan.has_shifted(d):
            return self.roll_back(d, reason, if_it_fails="{reason}; rolling back failed too")
        if d.phase == Phase.QUEUED:
            return self._finish(d, Phase.FAILED, reason)
        return self.fail_before_shift(d, reason)

    def give_up(self, d: Deployment, exc: BaseException, dequeue_count: int) -> Step:
        """The last delivery of a message that kept failing: record FAILED with the error (never let
        it vanish into the poison queue), put traffic back if it had moved, free the app."""
        reason = f"a step kept failing ({dequeue_count} deliveries): {type(exc).__name__}: {str(exc)[:400]}"
        # Decide first (see `_decide`): a worker killed after putting traffic back (or deactivating
        # the new revision) but before the FAILED record would otherwise re-run the phase on the
        # next delivery (or the sweeper's re-sent message) against the restored app, and could
        # promote what it had given up on (tests/scenario/test_crash_manual_rollback.py).
        return self._decide(d, Ending(EndingKind.GIVE_UP, reason), (),
                            Then(lambda saved: self._complete_give_up(saved, reason)))

    def _complete_give_up(self, d: Deployment, reason: str, resumed: bool = False) -> Step:
        try:
            if not plan.has_shifted(d):
                reason += self._deactivate_new(d, resumed)
            elif table := plan.rollback_table(d):
                labels = self._restore_traffic(d, table)  # the same table again is harmless
                reason += f"; traffic back to {traffic.describe(table)}{labels}"
        except Exception as again:  # noqa: BLE001 - recording the failure matters more
            reason += f"; could not restore the app: {type(again).__name__}"
        return self._finish(d.with_progress(ending=None), Phase.FAILED, reason)

