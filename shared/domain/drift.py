"""Drift: what an app serves against what the history says is live (pure).

`inspect` compares one app's state row with what Azure reports and says one of:
- UNMANAGED: the history records nothing live for the app: there is nothing to compare against;
- BUSY: a deployment holds the app or waits for it, or Azure is still applying a change: traffic is
  meant to be in flux, so the next pass compares again;
- IN_SYNC: the recorded live revision receives all the traffic;
- DRIFTED: something else serves: traffic moved by hand (`az containerapp ingress traffic set`), an
  IaC deployment that puts its own image back with `latestRevision: true`, the live revision
  deactivated or deleted.

`strays` picks, for an IN_SYNC app, the revisions a deployment that did not go live left active: a
revision created by a push that was superseded, failed or rolled back, whose deactivation came before
Azure had finished creating it (it then appeared, active at 0 %, after its deployment had ended). It
never picks the live revision, one with traffic or a label, or one no ended deployment of ours owns.

`remedy` then decides, for a DRIFTED app, by the live deployment's rule (`rollout.drift`):
- REPAIR: the rule says repair and the recorded revision exists, is active and healthy: put
  {live revision: 100} back (as a recorded deployment, through the rollout);
- RECORD: record only, because the rule says so or because the recorded revision cannot serve
  (gone, inactive, unhealthy): repairing would send traffic to something that cannot take it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum

from shared.domain.model import AppState, DriftPolicy
from shared.domain.traffic import describe, serving
from shared.ports import AppInfo


class DriftStatus(str, Enum):
    UNMANAGED = "unmanaged"
    BUSY = "busy"
    IN_SYNC = "in_sync"
    DRIFTED = "drifted"

    def __str__(self) -> str:
        return self.value


class Remedy(str, Enum):
    RECORD = "record"
    REPAIR = "repair"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class DriftFinding:
    status: DriftStatus
    expected_revision: str = ""
    expected_image: str = ""
    serving: dict[str, int] = field(default_factory=dict)  # revision -> weight (> 0 only)
    serving_images: dict[str, str] = field(default_factory=dict)  # revision -> image, where known
    detail: str = ""

    @property
    def signature(self) -> str:
        """Stable for one drift: a drift that persists is recorded once, a new one again."""
        basis = f"{self.expected_revision}|{sorted(self.serving.items())}"
        return hashlib.sha256(basis.encode()).hexdigest()[:16]


def inspect(state: AppState, info: AppInfo) -> DriftFinding:
    if not state.live_revision:
        return DriftFinding(DriftStatus.UNMANAGED, detail="no live deployment recorded")
    if state.active_deployment_id or state.pending_deployment_id:
        holder = state.active_deployment_id or state.pending_deployment_id
        return DriftFinding(DriftStatus.BUSY, state.live_revision, detail=f"deployment {holder} holds the app")
    if info.provisioning_state.lower() == "inprogress":
        return DriftFinding(DriftStatus.BUSY, state.live_revision, detail="Azure is applying a change to the app")
    now = serving(info.traffic)
    images = {r.name: r.image for r in info.revisions if r.name in now and r.image}
    if now == {state.live_revision: 100}:
        return DriftFinding(DriftStatus.IN_SYNC, state.live_revision, state.live_image, now, images)
    detail = (f"serves {describe(now) or 'nothing'}; the history says {state.live_revision} 100 %"
              f" ({state.live_tag or state.live_image or 'unknown image'})")
    return DriftFinding(DriftStatus.DRIFTED, state.live_revision, state.live_image, now, images, detail)


def remedy(finding: DriftFinding, policy: DriftPolicy, info: AppInfo) -> tuple[Remedy, str]:
    """What to do about a DRIFTED finding, and why (the reason goes into the record)."""
    if policy != DriftPolicy.REPAIR:
        return Remedy.RECORD, "the rule records drift only (rollout.drift: record)"
    revision = next((r for r in info.revisions if r.name == finding.expected_revision), None)
    if revision is None:
        return Remedy.RECORD, f"cannot repair: revision {finding.expected_revision} no longer exists"
    if not revision.active:
        return Remedy.RECORD, f"cannot repair: revision {finding.expected_revision} is not active"
    if not revision.assessment.readiness.probe:  # a scaled-to-zero revision starts on its first request
        return Remedy.RECORD, (f"cannot repair: revision {finding.expected_revision} is not healthy "
                               f"(running {revision.running_state}, health {revision.health_state})")
    return Remedy.REPAIR, f"repairing: {finding.expected_revision} back to 100 %"


def strays(info: AppInfo, live_revision: str, ended_without_going_live: set[str]) -> list[str]:
    """Active revisions at 0 %, without a label, that a deployment which did not go live created."""
    return sorted(r.name for r in info.revisions
                  if r.active and r.name != live_revision and r.name in ended_without_going_live
                  and not info.traffic.get(r.name) and not r.labels)
