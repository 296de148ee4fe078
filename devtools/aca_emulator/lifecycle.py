"""Revision lifecycle as the service reports it, beyond the spec's enums (PITFALLS.md, "Revision states").

- A new or re-activated revision reports ``runningState: Activating`` with ``healthState: None`` while it starts.
- Ready: ``Provisioned`` / ``Running`` / ``Healthy`` (or what a behaviour says: ``ScaledToZero`` until the
  first request, ``RunningAtMaxScale``, ``Degraded``, or any other string: the values are open strings).
- Crash loop: the revision is provisioned but never ready; it stays ``Activating`` until the progress
  deadline, then ``ActivationFailed`` / ``Unhealthy`` with ``runningStateDetails`` "Deployment Progress Deadline
  Exceeded. 0/N replicas ready." The write that created it still succeeds.
- Image pull failure (a digest not yet replicated to the app's region): provisioning fails with the
  service's MANIFEST_UNKNOWN wording, and the operation fails with ``ContainerAppOperationError``.
- ``unhealthy`` (the older behaviour): provisioning fails outright.
"""
from __future__ import annotations

import time

READY, STARTING, FAILED = "ready", "starting", "failed"
STARTING_STATE = {"provisioningState": "Provisioning", "runningState": "Activating", "healthState": "None",
                  "runningStateDetails": None}
DEADLINE_DETAILS = "Deployment Progress Deadline Exceeded. 0/{n} replicas ready."


def _replicas(rev: dict) -> int:
    scale = (rev["template"] or {}).get("scale") or {}
    return max(int(scale.get("minReplicas") or 1), 1)


def not_replicated(behaviour: dict | None, now: float | None = None) -> bool:
    until = (behaviour or {}).get("not_replicated_until")
    return until is not None and (time.time() if now is None else now) < until


def start(rev: dict, behaviour: dict | None, progress_deadline: float) -> str:
    """Apply the outcome of starting ``rev`` (in place)."""
    b = behaviour or {}
    rev.update(provisioningError=None, runningStateDetails=None)
    if not_replicated(b):
        image = next((i for i in _images(rev) if i), "")
        rev.update(provisioningState="Failed", runningState="Failed", healthState="Unhealthy",
                   provisioningError="The following field(s) are either invalid or missing. Field "
                                     f"'template.containers.{_first_container(rev)}.image' is invalid with details: "
                                     f"'Invalid value: \"{image}\": GET https:: MANIFEST_UNKNOWN: manifest unknown; "
                                     "map[]'; (emulator: image not yet replicated to this region).")
        return FAILED
    if b.get("unhealthy"):
        rev.update(provisioningState="Failed", runningState="Failed", healthState="Unhealthy",
                   provisioningError=f"Revision '{rev['name']}' never became healthy "
                                     f"(emulator behaviour for image '{b.get('image')}').")
        return FAILED
    if b.get("crash_loop"):
        rev.update(STARTING_STATE, provisioningState="Provisioned", replicas=0,
                   activationDeadline=time.time() + progress_deadline)
        return STARTING
    if b.get("cold_start_ms") is not None:
        rev.update(provisioningState="Provisioned", runningState="ScaledToZero", healthState="Healthy", replicas=0,
                   coldStart=True)
        return READY
    rev.update(provisioningState="Provisioned", runningState=b.get("running_state") or "Running",
               healthState=b.get("health_state") or "Healthy", replicas=_replicas(rev),
               runningStateDetails=b.get("running_state_details"))
    return READY


def deadline_exceeded(rev: dict) -> None:
    rev.pop("activationDeadline", None)
    rev.update(runningState="ActivationFailed", healthState="Unhealthy",
               runningStateDetails=DEADLINE_DETAILS.format(n=_replicas(rev)))


def woke_up(rev: dict) -> None:
    """The first request to a scaled-to-zero revision started a replica."""
    rev.pop("coldStart", None)
    rev.update(runningState="Running", replicas=_replicas(rev))


def serving(rev: dict) -> bool:
    """Whether the revision has a ready replica to answer requests (or can start one: scale from zero)."""
    return rev["active"] and rev["provisioningState"] != "Failed" and rev["runningState"] not in (
        "Activating", "ActivationFailed", "Failed", "Stopped")


def _images(rev: dict) -> list[str]:
    return [c.get("image", "") for c in (rev["template"] or {}).get("containers") or [] if isinstance(c, dict)]


def _first_container(rev: dict) -> str:
    containers = (rev["template"] or {}).get("containers") or [{}]
    return str(containers[0].get("name") or "")
