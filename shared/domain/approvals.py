"""What people ask of a running deployment, and whether it can be done (pure).

Approve / reject a deployment waiting in `awaiting_approval`; pause, resume, promote now or abort
a rollout; override a freeze window in an emergency. The API records the request in the
deployment's progress (`ControlProgress.request`, with an ETag) and wakes the worker; the worker,
the only writer of phases, carries it out at its next step. `judge` is the one place that says
whether a request makes sense for the deployment as it is now; a refused one changes nothing in
Azure and is recorded with its reason (expired, superseded, finished, not an approver).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from shared.domain.controls import ApprovalPolicy


class ControlAction(str, Enum):
    APPROVE = "approve"
    REJECT = "reject"
    PAUSE = "pause"
    RESUME = "resume"
    PROMOTE = "promote"  # skip the remaining canary steps and bakes: all traffic now
    ABORT = "abort"  # roll back now
    OVERRIDE_FREEZE = "override_freeze"  # an emergency: go on despite a freeze window

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ControlRequest:
    action: ControlAction
    by: str  # the function key's name, or the signed-in Entra name
    reason: str
    at: datetime

    def describe(self) -> str:
        return f"{self.action} by {self.by or 'unknown'}: {self.reason}"


@dataclass(frozen=True)
class ControlProgress:
    """The release-control facts a deployment records (part of its `RolloutProgress`)."""

    request: ControlRequest | None = None  # recorded by the API, carried out by the worker
    approval_requested_at: datetime | None = None
    approved: ControlRequest | None = None  # the approval (or rejection) that was carried out
    resume_phase: str = ""  # PAUSED / FROZEN: the phase to go back to
    freeze_override: ControlRequest | None = None  # this deployment ignores freeze windows
    promoted_from: str = ""  # the deployment (on another app) whose success this one promotes
    not_before: datetime | None = None  # a promotion waits out its soak time before it starts
    promoted_to: tuple[str, ...] = ()  # deployments this one's success promoted

    def to_dict(self) -> dict[str, Any]:
        def req(r: ControlRequest | None) -> dict[str, Any] | None:
            return None if r is None else {"action": r.action.value, "by": r.by, "reason": r.reason,
                                           "at": r.at.isoformat()}

        return {"request": req(self.request), "approval_requested_at": _iso(self.approval_requested_at),
                "approved": req(self.approved), "resume_phase": self.resume_phase,
                "freeze_override": req(self.freeze_override), "promoted_from": self.promoted_from,
                "not_before": _iso(self.not_before), "promoted_to": list(self.promoted_to)}

    @classmethod
    def from_dict(cls, data: Any) -> "ControlProgress":
        if not isinstance(data, dict):
            return cls()

        def req(value: Any) -> ControlRequest | None:
            if not isinstance(value, dict):
                return None
            return ControlRequest(ControlAction(value["action"]), str(value.get("by") or ""),
                                  str(value.get("reason") or ""), datetime.fromisoformat(value["at"]))

        def when(key: str) -> datetime | None:
            return datetime.fromisoformat(data[key]) if data.get(key) else None

        return cls(req(data.get("request")), when("approval_requested_at"), req(data.get("approved")),
                   str(data.get("resume_phase") or ""), req(data.get("freeze_override")),
                   str(data.get("promoted_from") or ""), when("not_before"),
                   tuple(str(x) for x in data.get("promoted_to") or ()))

    @classmethod
    def read(cls, data: Any) -> "ControlProgress":
        """`from_dict` for stored documents: what does not read is absent (never raises)."""
        try:
            return cls.from_dict(data)
        except (KeyError, ValueError, TypeError):
            return cls()

    def with_request(self, request: ControlRequest | None) -> "ControlProgress":
        return replace(self, request=request)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# Phases are named by value so this module needs no import of the model (which imports controls).
RUNNING = frozenset({"creating_revision", "waiting_ready", "smoke_testing", "shifting", "verifying"})
PAUSABLE = frozenset({"waiting_ready", "smoke_testing", "shifting", "verifying"})
PROMOTABLE = frozenset({"shifting", "verifying", "paused"})
TERMINAL = frozenset({"succeeded", "failed", "rolled_back", "superseded", "skipped"})


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str
    expired: bool = False  # an approval after its expiry: the worker ends the deployment


def approval_expires_at(policy: ApprovalPolicy, requested_at: datetime | None) -> datetime | None:
    return None if requested_at is None else requested_at + timedelta(seconds=policy.expires_s)


def judge(action: ControlAction, phase: str, policy: ApprovalPolicy, progress: ControlProgress,
          by: str, now: datetime, canary: bool) -> Verdict:
    """Whether `action` by `by` can be carried out on a deployment in `phase` now."""
    if phase in TERMINAL:
        return Verdict(False, f"the deployment is {phase}: {action} changes nothing")
    if progress.request is not None and progress.request.action != action:
        return Verdict(False, f"{progress.request.describe()} is still being carried out; try again")
    if action in (ControlAction.APPROVE, ControlAction.REJECT):
        if phase != "awaiting_approval":
            return Verdict(False, f"the deployment is {phase}, not waiting for approval: {action} changes nothing")
        if not policy.may_approve(by):
            return Verdict(False, f"{by or 'an unnamed caller'} is not one of the approvers "
                                  f"({', '.join(policy.approvers)}): {action} changes nothing")
        expires = approval_expires_at(policy, progress.approval_requested_at)
        if expires is not None and now >= expires:
            return Verdict(False, f"the approval request expired at {expires:%Y-%m-%d %H:%M} UTC: "
                                  f"{action} changes nothing", expired=True)
        return Verdict(True, f"{action}d by {by or 'unknown'}")
    if action == ControlAction.PAUSE:
        ok = phase in PAUSABLE
        return Verdict(ok, "paused" if ok else f"a {phase} deployment cannot be paused")
    if action == ControlAction.RESUME:
        ok = phase == "paused"
        return Verdict(ok, "resumed" if ok else f"the deployment is {phase}, not paused")
    if action == ControlAction.PROMOTE:
        if not canary:
            return Verdict(False, "not a canary rollout: nothing to promote")
        ok = phase in PROMOTABLE
        return Verdict(ok, "promoted" if ok else f"a {phase} deployment has no traffic steps to skip")
    if action == ControlAction.ABORT:
        ok = phase != "queued"
        return Verdict(ok, "aborted" if ok else "the deployment has not started; a newer push supersedes it")
    if action == ControlAction.OVERRIDE_FREEZE:
        if progress.freeze_override is not None:
            return Verdict(False, f"already overridden ({progress.freeze_override.describe()})")
        return Verdict(True, "freeze overridden")
    return Verdict(False, f"unknown action {action}")
