"""Accept a planned deployment for a target, or say why not (pure).

Given what the target's state row says, one planned push is:
- RECORDED: this very deployment is already recorded (a redelivered event): stop quietly;
- DUPLICATE: its digest already runs on the target or is queued/rolling out there (a second tag for
  the same digest, or a redelivery racing with the first): recorded as skipped;
- OLDER: its version sorts below the newest version accepted for the target and the rule does not
  allow downgrades (a late, out-of-order event): recorded as skipped;
- ACCEPT: with the new state to write in the same transaction as the deployment.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from shared.domain.model import AppState, Deployment, PlannedDeployment, Target
from shared.domain.tagversion import is_newer, is_older

MAX_INFLIGHT_DIGESTS = 20  # bounded: the state row must stay small; older entries are long finished


class Verdict(str, Enum):
    ACCEPT = "accept"
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    OLDER = "older"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Candidate:
    """What the decision needs, from a plan (intake) or a recorded deployment (recovery)."""

    deployment_id: str
    target: Target
    digest: str
    tag: str
    version_key: str
    allow_downgrade: bool
    environment: str

    @classmethod
    def from_plan(cls, plan: PlannedDeployment) -> "Candidate":
        return cls(plan.deployment_id, plan.target, plan.push.digest, plan.push.tag,
                   plan.version_key, plan.allow_downgrade, plan.environment)

    @classmethod
    def from_deployment(cls, d: Deployment) -> "Candidate":
        return cls(d.id, d.target, d.digest, d.tag, d.version_key,
                   d.allow_downgrade, d.environment)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    state: AppState | None = None  # ACCEPT: the state to write (etag of the one read)


def decide(c: Candidate, state: AppState | None, now: datetime) -> Decision:
    current = state or AppState(target=c.target)
    if c.deployment_id in (current.pending_deployment_id, current.active_deployment_id,
                           current.live_deployment_id, current.last_deployment_id):
        return Decision(Verdict.RECORDED, f"deployment {c.deployment_id} is already recorded")
    if c.digest and c.digest == current.live_digest:
        return Decision(
            Verdict.DUPLICATE,
            f"duplicate: {c.digest[:19]}… already live on {c.target.app}"
            + (f" (as {current.live_tag})" if current.live_tag else ""),
        )
    if c.digest in current.inflight_digests:
        return Decision(Verdict.DUPLICATE,
                        f"duplicate: {c.digest[:19]}… already queued or rolling out on {c.target.app}")
    # Keys of different kinds (two rules with different tag policies on one app, or a policy that
    # changed) have no order: only a version known to be older is a downgrade.
    if is_older(c.version_key, current.latest_version_key) and not c.allow_downgrade:
        return Decision(
            Verdict.OLDER,
            f"older version: {c.tag} sorts below the newest accepted for {c.target.app} "
            "and the rule does not allow downgrades",
        )
    inflight = tuple(d for d in current.inflight_digests if d != c.digest) + (c.digest,)
    new_state = replace(
        current,
        environment=c.environment or current.environment,
        pending_deployment_id=c.deployment_id,
        inflight_digests=inflight[-MAX_INFLIGHT_DIGESTS:],
        # The newest accepted version; a key of another kind starts the new scheme.
        latest_version_key=(c.version_key if c.version_key and is_newer(c.version_key, current.latest_version_key)
                            else current.latest_version_key),
        last_deployment_id=c.deployment_id,
        last_phase="queued",
        updated_at=now,
    )
    return Decision(Verdict.ACCEPT, "accepted", new_state)
