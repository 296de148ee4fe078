"""The drift reconciler: is what the history calls live what each app serves? (timer, and after endings)

For every app the history knows (`list_apps`), read the app from Azure and `inspect` it; an app in
sync also loses the revisions ended deployments left active (`strays`: a create that Azure finished
after its deployment was superseded), each with a line in that deployment's story
(`shared.domain.drift`). A new drift is recorded once: on the app's state row (`drift`, `drift_detail`,
`drift_since`: what `GET /api/apps`, `acr-deploy apps` and the page show) and as a line in the live
deployment's story. When the live deployment's rule says `rollout.drift: repair` and the recorded
revision is healthy, a repair is requested: a recorded rollback-kind deployment back to that revision,
run by the rollout like any other (it takes the app, so it never races a push). When the app serves the
live revision again the drift is cleared, with a line in the story.

A pass is bounded (apps per pass) and never raises: one app's error is counted and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Callable, Protocol

from shared.domain.drift import DriftFinding, DriftStatus, Remedy, inspect, remedy, strays
from shared.domain.model import AppState, Deployment, DeploymentEvent, DriftPolicy, Phase, Target, utcnow
from shared.ports import (
    AppInfo, ConcurrencyError, ContainerAppsPort, DeploymentQuery, DeploymentRepository, HistoryReader,
    OutcomePublisher,
    PermanentAzureError, TransientAzureError,
)

log = logging.getLogger("acr_deploy.drift")

MAX_APPS_PER_PASS = 500
NOT_LIVE = frozenset({Phase.SUPERSEDED, Phase.FAILED, Phase.ROLLED_BACK})
REPAIR_REQUESTER = "acr-deploy drift repair"


class DriftStore(DeploymentRepository, HistoryReader, Protocol):
    """The store the reconciler needs: both sides of the history."""


class RepairRequester(Protocol):
    def __call__(self, target: Target, revision: str, reason: str) -> Deployment:
        """Record and enqueue a deployment that puts `revision` back to 100 % on `target`."""
        ...


@dataclass
class DriftReport:
    checked: int = 0
    in_sync: int = 0
    busy: int = 0
    unmanaged: int = 0
    drifted: int = 0
    recorded: int = 0
    repairs: int = 0
    cleaned: int = 0  # stray revisions deactivated
    errors: int = 0


DRIFT_EVENT = "AcrDeploy.App.Drifted"


class DriftReconciler:
    def __init__(self, store: DriftStore, apps: ContainerAppsPort, repair: RepairRequester,
                 clock: Callable[[], datetime] = utcnow, notify: OutcomePublisher | None = None) -> None:
        self.store = store
        self.apps = apps
        self.repair = repair
        self.clock = clock
        self.notify = notify  # the rules' chat webhooks (a new drift is something a person acts on)

    def reconcile(self) -> DriftReport:
        report = DriftReport()
        for state in self.store.list_apps()[:MAX_APPS_PER_PASS]:
            try:
                self.reconcile_app(state.target, report)
            except (TransientAzureError, PermanentAzureError, ConcurrencyError) as exc:
                report.errors += 1
                log.warning("drift %s: %s: %s", state.target.app, type(exc).__name__, str(exc)[:300])
        if report.drifted or report.errors:
            log.info("drift pass: %s", report)
        return report

    def reconcile_app(self, target: Target, report: DriftReport | None = None) -> DriftFinding:
        report = report or DriftReport()
        report.checked += 1
        state = self.store.get_app_state(target)  # the state row itself: its etag guards the write
        if state is None:
            report.unmanaged += 1
            return DriftFinding(DriftStatus.UNMANAGED)
        info = self.apps.get_app(target)
        finding = inspect(state, info)
        if finding.status == DriftStatus.UNMANAGED:
            report.unmanaged += 1
        elif finding.status == DriftStatus.BUSY:
            report.busy += 1
        elif finding.status == DriftStatus.IN_SYNC:
            report.in_sync += 1
            if state.drift:
                self._resolved(state)
            report.cleaned += self._clean_strays(target, info, state.live_revision)
        else:
            report.drifted += 1
            if state.drift != finding.signature:
                live = self.store.get_deployment(state.live_deployment_id, app=target.app)
                policy = live.rollout.drift if live is not None else DriftPolicy.RECORD
                action, why = remedy(finding, policy, info)
                self._record(state, live, finding, why)
                report.recorded += 1
                if action == Remedy.REPAIR:
                    self.repair(target, finding.expected_revision, f"drift: {finding.detail}")
                    report.repairs += 1
        return finding

    def _clean_strays(self, target: Target, info: AppInfo, live_revision: str) -> int:
        """Deactivate what ended deployments left active (see `strays`); one history line each."""
        candidates = {r.name for r in info.revisions if r.active and r.name != live_revision}
        if not candidates:
            return 0
        owners = {d.revision: d for d in self.store.list_deployments(DeploymentQuery(app=target.app, limit=100)).items
                  if d.revision in candidates and d.target.key == target.key and d.phase in NOT_LIVE}
        cleaned = 0
        for name in strays(info, live_revision, set(owners)):
            self.apps.set_revision_active(target, name, False)
            owner = owners[name]
            self._tell(owner, self.clock(), f"clean-up: {name} was still active at 0 % after this deployment "
                                            "ended; deactivated", {"deactivated": name})
            cleaned += 1
        return cleaned

    # ------------------------------------------------------------------ records
    def _record(self, state: AppState, live: Deployment | None, finding: DriftFinding, why: str) -> None:
        now = self.clock()
        self.store.save_app_state(replace(state, drift=finding.signature, drift_detail=finding.detail[:500],
                                          drift_since=now, updated_at=now))
        log.warning("drift on %s: %s; %s", state.target.app, finding.detail, why)
        self._tell(live, now, f"drift: {finding.detail}; {why}",
                   {"drift": "seen", "serving": finding.serving, "expected": finding.expected_revision})
        if live is not None and self.notify is not None:  # best effort by contract: never raises
            self.notify.publish(DRIFT_EVENT, live.evolve(reason=f"drift: {finding.detail}; {why}"[:500]))

    def _resolved(self, state: AppState) -> None:
        now = self.clock()
        self.store.save_app_state(replace(state, drift="", drift_detail="", drift_since=None, updated_at=now))
        live = self.store.get_deployment(state.live_deployment_id, app=state.target.app)
        self._tell(live, now, f"drift resolved: {state.live_revision} serves 100 % again",
                   {"drift": "resolved", "expected": state.live_revision})

    def _tell(self, live: Deployment | None, now: datetime, message: str, data: dict) -> None:
        """A line in the live deployment's story (best effort: the state row is the record)."""
        if live is None:
            return
        try:
            self.store.save_deployment(live, DeploymentEvent(live.id, now, live.phase, message[:1000], data))
        except ConcurrencyError:
            log.info("drift note for %s lost a race; the state row has it", live.id)
