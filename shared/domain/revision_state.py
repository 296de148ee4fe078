"""What a revision's reported state means for a rollout waiting on it (pure).

The service reports more than the REST spec's enums, and the values are open strings
(docs/emulator.md, "Revision states"): a starting revision is `Activating` with health `None`; a
crash-looping one stays `Provisioned` and turns `ActivationFailed` / `Unhealthy` with
`runningStateDetails` "Deployment Progress Deadline Exceeded" once the service gives up; a revision
with `minReplicas: 0` can be `ScaledToZero` until its first request. Reading only "Failed" caught a bad
image at the ready time-out, without the service's reason; reading only "Running" failed a healthy
scale-to-zero app.

A revision that could not pull its image (a geo-replicated registry that has not received the digest
yet) fails like any other; `is_pull_failure` lets the rollout retry that case for a while.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Readiness(str, Enum):
    READY = "ready"  # running (or at its max scale) and healthy: smoke-check it
    COLD = "cold"  # scaled to zero: healthy but without a replica; the smoke check's request starts one
    STARTING = "starting"  # not there yet (provisioning, activating, degraded...): poll again
    FAILED = "failed"  # the service gave up on it: fail now, with its reason
    UNKNOWN = "unknown"  # a state this release does not know: log it and poll until the ready time-out

    def __str__(self) -> str:
        return self.value

    @property
    def probe(self) -> bool:
        """Whether the smoke checks may start (a cold revision is probed, not waited on)."""
        return self in (Readiness.READY, Readiness.COLD)


@dataclass(frozen=True)
class Assessment:
    readiness: Readiness
    detail: str = ""  # the service's own words when it failed (provisioning error, state details)


_RUNNING = frozenset({"running", "runningatmaxscale"})
_STARTING_RUNNING = frozenset({"activating", "processing", "degraded", "stopped", ""})
_FAILED_RUNNING = frozenset({"failed", "activationfailed"})
_KNOWN_PROVISIONING = frozenset({"provisioning", "provisioned", "failed", "deprovisioning", "deprovisioned", ""})
_KNOWN_HEALTH = frozenset({"healthy", "unhealthy", "none", ""})


def assess(provisioning: str, running: str, health: str, details: str = "", error: str = "") -> Assessment:
    """The readiness of a revision from the four things the service reports about it."""
    prov, run, hp = provisioning.lower(), running.lower(), health.lower()
    reason = error or details
    if prov == "failed" or run in _FAILED_RUNNING:
        return Assessment(Readiness.FAILED, reason or f"provisioning {provisioning}, running {running}")
    # Unhealthy after the progress deadline: the service says so in the details; a revision
    # that is merely unhealthy while it starts is polled on.
    if hp == "unhealthy" and details:
        return Assessment(Readiness.FAILED, details)
    if prov not in _KNOWN_PROVISIONING or hp not in _KNOWN_HEALTH or \
            run not in _RUNNING | _STARTING_RUNNING | {"scaledtozero"}:
        return Assessment(Readiness.UNKNOWN, f"provisioning {provisioning}, running {running}, health {health}")
    if prov != "provisioned":
        return Assessment(Readiness.STARTING)
    if run in _RUNNING and hp == "healthy":
        return Assessment(Readiness.READY)
    if run == "scaledtozero" and hp != "unhealthy":
        return Assessment(Readiness.COLD)
    return Assessment(Readiness.STARTING)


def describe(provisioning: str, running: str, health: str, details: str = "") -> str:
    text = f"provisioning {provisioning or '?'}, running {running or '?'}, health {health or '?'}"
    return f"{text} ({details})" if details else text


# --------------------------------------------------------------------------- image pulls

# The service's words for an image it could not pull: the registry does not (yet) have the manifest.
_PULL_FAILURE = re.compile(r"MANIFEST_UNKNOWN|manifest unknown|ImagePull|ErrImagePull|failed to pull image", re.I)

PULL_RETRY_WINDOW_S = 300.0  # geo-replication usually completes within minutes of the push
MAX_PULL_RETRIES = 3
PULL_RETRY_BASE_S = 15.0


def is_pull_failure(detail: str) -> bool:
    return bool(_PULL_FAILURE.search(detail or ""))


def pull_retry_delay_s(retry: int) -> float:
    """The wait before the `retry`-th new revision (1-based): 15 s, 30 s, 60 s."""
    return PULL_RETRY_BASE_S * (2 ** max(retry - 1, 0))


def may_retry_pull(detail: str, retries_so_far: int, seconds_since_push: float) -> bool:
    """A pull failure soon after the push is worth another revision (the registry's replica may
    not have the digest yet); later, or after MAX_PULL_RETRIES, it is the image's fault."""
    return is_pull_failure(detail) and retries_so_far < MAX_PULL_RETRIES and \
        seconds_since_push + pull_retry_delay_s(retries_so_far + 1) <= PULL_RETRY_WINDOW_S
