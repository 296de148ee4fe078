"""The rollout's decisions, as plain functions over data (no I/O, no clock of their own).

The worker (`shared.services.rollout`) reads the world, asks these functions what to do, does it and
records the answer. Everything here is unit-tested with plain values.

Phases (flagger-like; see docs/rollout.md for the diagram):

    QUEUED -> CREATING_REVISION -> WAITING_READY -> SMOKE_TESTING -> SHIFTING <-> VERIFYING -> SUCCEEDED
       |             |                 |                |               |            |
       +-------------+-----------------+----------------+--> FAILED     +------------+--> ROLLED_BACK
       +-------------+-----------------+----------------+--> SUPERSEDED (only before the traffic shift)

A manual rollback (kind=rollback) skips CREATING_REVISION: its revision exists already.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Iterable, Mapping, Sequence

from shared.domain import traffic
from shared.domain.model import (
    AppState,
    Deployment,
    DeploymentEvent,
    DeploymentKind,
    Phase,
    RolloutSettings,
    SmokeCheck,
    Strategy,
)
from shared.domain.precedence import Rank, outranks
from shared.domain.progress import CheckRun
from shared.errors import ConflictError, InvalidRequestError, NotFoundError
from shared.ports import RevisionInfo

# The service limits a revision name (`<app>--<suffix>`) to 54 characters (app names are at most 32),
# as Azure/azure-dev#2226 and Altinn/dialogporten#3942 found in practice; suffixes are lowercase
# letters, digits and single '-', starting with a letter and ending with a letter or digit.
MAX_REVISION_NAME = 54
_SUFFIX_HASH_LEN = 8

PRE_SHIFT = frozenset(
    {Phase.QUEUED, Phase.CREATING_REVISION, Phase.WAITING_READY, Phase.SMOKE_TESTING, Phase.AWAITING_APPROVAL}
)
SHIFTED = frozenset({Phase.SHIFTING, Phase.VERIFYING})

# Which phase may follow which. A transition outside this table is a bug in the worker.
ALLOWED: dict[Phase, frozenset[Phase]] = {
    Phase.QUEUED: frozenset(
        {Phase.CREATING_REVISION, Phase.WAITING_READY, Phase.SUCCEEDED, Phase.FAILED, Phase.SUPERSEDED}
    ),
    Phase.CREATING_REVISION: frozenset(
        {Phase.WAITING_READY, Phase.SUCCEEDED, Phase.FAILED, Phase.SUPERSEDED}
    ),
    # back to CREATING_REVISION: a new revision when the image could not be pulled yet
    Phase.WAITING_READY: frozenset({Phase.SMOKE_TESTING, Phase.CREATING_REVISION, Phase.FAILED, Phase.SUPERSEDED}),
    Phase.SMOKE_TESTING: frozenset({Phase.SHIFTING, Phase.FAILED, Phase.SUPERSEDED}),
    Phase.SHIFTING: frozenset({Phase.VERIFYING, Phase.ROLLED_BACK, Phase.FAILED}),
    Phase.VERIFYING: frozenset(
        {Phase.SHIFTING, Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.FAILED}
    ),
}

# Release controls (shared.services.rollout.controls): a person's or a calendar's holds. PAUSED and
# FROZEN return to the phase they interrupted (`progress.controls.resume_phase`).
HELD = frozenset({Phase.PAUSED, Phase.FROZEN})
_RESUMABLE = frozenset({Phase.CREATING_REVISION, Phase.WAITING_READY, Phase.SMOKE_TESTING, Phase.SHIFTING,
                        Phase.VERIFYING})
_ENDS = frozenset({Phase.FAILED, Phase.ROLLED_BACK, Phase.SUPERSEDED})
for _phase, _next in {
    Phase.QUEUED: {Phase.SKIPPED},  # a promotion whose source stopped serving during the soak
    Phase.CREATING_REVISION: {Phase.FROZEN, Phase.SKIPPED},
    Phase.WAITING_READY: {Phase.PAUSED},
    Phase.SMOKE_TESTING: {Phase.PAUSED},
    Phase.SHIFTING: {Phase.AWAITING_APPROVAL, Phase.FROZEN, Phase.PAUSED},
    Phase.VERIFYING: {Phase.PAUSED},
    Phase.AWAITING_APPROVAL: {Phase.SHIFTING, Phase.FROZEN, *_ENDS},
    Phase.FROZEN: {*_RESUMABLE, Phase.SKIPPED, Phase.PAUSED, *_ENDS},
    Phase.PAUSED: {*_RESUMABLE, *_ENDS},
}.items():
    ALLOWED[_phase] = ALLOWED.get(_phase, frozenset()) | frozenset(_next)


def effective_phase(d: Deployment) -> Phase:
    """The phase a held (paused, frozen) deployment was in; any other deployment's own phase."""
    if d.phase in HELD and d.progress.controls.resume_phase:
        return Phase(d.progress.controls.resume_phase)
    return d.phase


def has_shifted(d: Deployment) -> bool:
    """Whether traffic may have moved to the new revision: an ending must then roll back."""
    return effective_phase(d) in SHIFTED


OUTCOME_EVENTS = {
    Phase.SUCCEEDED: "AcrDeploy.Deployment.Succeeded",
    Phase.FAILED: "AcrDeploy.Deployment.Failed",
    Phase.ROLLED_BACK: "AcrDeploy.Deployment.RolledBack",
}


# --------------------------------------------------------------------------- naming


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return re.sub(r"-{2,}", "-", slug)


def revision_suffix(app: str, tag: str, digest: str, attempt: int = 0) -> str:
    """A revisionSuffix made from the tag and digest: readable (`v1-4-2-3f9a0c12`), valid for
    Container Apps, short enough that `<app>--<suffix>` fits the service's limit, and unique per
    (tag, digest): the hash covers both, so two tags of one digest, or two digests of one tag,
    never share a revision. Deterministic, so the revision's name is known before the PATCH.
    `attempt` > 0 names a retry's new revision (the first could not pull the image)."""
    if not digest:
        raise ValueError("a digest is required to name a revision")
    budget = MAX_REVISION_NAME - len(app) - 2
    if budget < _SUFFIX_HASH_LEN + 1:
        raise ValueError(f"app name {app!r} leaves no room for a revision suffix")
    basis = f"{tag}@{digest}" + (f"#{attempt}" if attempt else "")
    hashed = hashlib.sha256(basis.encode()).hexdigest()[:_SUFFIX_HASH_LEN]
    slug = _slug(tag)
    if slug and not slug[0].isalpha():
        slug = "v" + slug  # suffixes start with a letter; "1.4.2" reads naturally as "v1-4-2"
    room = budget - _SUFFIX_HASH_LEN - 1
    slug = slug[:room].rstrip("-")
    if not slug:
        return "r" + hashed[: budget - 1]
    return f"{slug}-{hashed}"


def revision_name(app: str, suffix: str) -> str:
    return f"{app}--{suffix}"


_SUFFIX_RE = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")


def is_valid_suffix(app: str, suffix: str) -> bool:
    return (
        bool(_SUFFIX_RE.match(suffix))
        and "--" not in suffix
        and len(revision_name(app, suffix)) <= MAX_REVISION_NAME
    )


def rollback_deployment_id(target_key: str, revision: str, at: datetime, requested_by: str) -> str:
    basis = f"{target_key}|rollback|{revision}|{at.isoformat()}|{requested_by}"
    return f"{at:%Y%m%d%H%M%S}-{hashlib.sha256(basis.encode()).hexdigest()[:10]}"


def digest_of(image: str) -> str:
    return image.rsplit("@", 1)[1] if "@" in image else ""


# --------------------------------------------------------------------------- phases


def transition(
    d: Deployment, phase: Phase, message: str, now: datetime, **data: Any
) -> tuple[Deployment, DeploymentEvent]:
    """The deployment in its next phase plus the history line that says why. Terminal phases keep
    the message as the deployment's `reason`. Raises ValueError for a transition the table forbids."""
    if phase != d.phase and phase not in ALLOWED.get(d.phase, frozenset()):
        raise ValueError(f"illegal transition {d.phase} -> {phase} for {d.id}")
    changes: dict[str, Any] = {"phase": phase, "updated_at": now}
    if phase.terminal or phase != d.phase:
        changes["reason"] = message if phase.terminal else d.reason
    if phase != d.phase:
        changes["attempts"] = 0
    return d.evolve(**changes), DeploymentEvent(d.id, now, phase, message, dict(data))


def note(d: Deployment, message: str, now: datetime, **data: Any) -> DeploymentEvent:
    """A history line that is not a phase change (a smoke attempt, a transient error...)."""
    return DeploymentEvent(d.id, now, d.phase, message, dict(data))


def deadline_for(d: Deployment) -> datetime:
    return d.deadline or d.created_at + timedelta(seconds=d.rollout.deadline_s)


def past_deadline(d: Deployment, now: datetime) -> bool:
    return not d.phase.terminal and now >= deadline_for(d)


def outcome_event(d: Deployment) -> str | None:
    """The CloudEvent type to publish for a finished deployment (None: nothing to announce).
    A manual rollback that succeeded is announced as a rollback."""
    if d.phase == Phase.SUCCEEDED and d.kind == DeploymentKind.ROLLBACK:
        return OUTCOME_EVENTS[Phase.ROLLED_BACK]
    return OUTCOME_EVENTS.get(d.phase)


# --------------------------------------------------------------------------- taking the app


class Claim(str, Enum):
    TAKE = "take"  # the app is free (or held by a finished deployment): take it
    MINE = "mine"  # already held by this deployment (a redelivered message)
    WAIT = "wait"  # an older rollout holds it: wait for it to finish or yield
    SUPERSEDED = "superseded"  # a newer push exists: this one never starts / stops before shifting


@dataclass(frozen=True)
class ClaimDecision:
    claim: Claim
    other: str = ""  # the deployment holding the app / superseding this one


def decide_claim(d: Deployment, state: AppState | None, holder: Deployment | None) -> ClaimDecision:
    """May `d` hold the app now? `holder` is the deployment named by `state.active_deployment_id`
    (None when it is unset or no longer exists). The newer push wins (`shared.domain.precedence`:
    version, then push time), except that a rollout already moving traffic is never interrupted:
    the newer one waits for it."""
    active = state.active_deployment_id if state else ""
    if active == d.id:
        return ClaimDecision(Claim.MINE)
    me = rank_of(d)
    if state is not None:
        pending = Rank(state.pending_version_key, state.pending_deployment_id)
        if pending.deployment_id != d.id and outranks(pending, me):
            return ClaimDecision(Claim.SUPERSEDED, pending.deployment_id)
        live = Rank(state.live_version_key, state.live_deployment_id)
        # A late, out-of-order push must not replace a newer live one. (A manual rollback is the
        # operator's explicit wish: it never yields to what is live.)
        if d.kind == DeploymentKind.PUSH and live.deployment_id != d.id and outranks(live, me):
            return ClaimDecision(Claim.SUPERSEDED, live.deployment_id)
    if not active or holder is None or holder.phase.terminal:
        return ClaimDecision(Claim.TAKE)
    if outranks(rank_of(holder), me):
        return ClaimDecision(Claim.SUPERSEDED, active)
    return ClaimDecision(Claim.WAIT, active)


def rank_of(d: Deployment) -> Rank:
    """A deployment's place in the order. A manual rollback ranks by its time alone."""
    if d.kind != DeploymentKind.PUSH or d.allow_downgrade:
        return Rank("", d.id)
    return Rank(d.version_key, d.id)


def superseded_by(d: Deployment, state: AppState | None) -> str:
    """While `d` holds the app before its traffic shift: the id of a newer deployment waiting for
    the app ("" = carry on). Once traffic moves, the rollout finishes first."""
    if effective_phase(d) not in PRE_SHIFT or state is None:
        return ""
    me = rank_of(d)
    for other in (Rank(state.pending_version_key, state.pending_deployment_id),
                  Rank(state.active_version_key, state.active_deployment_id)):
        if other.deployment_id != d.id and outranks(other, me):
            return other.deployment_id
    return ""


def claimed(state: AppState, d: Deployment, now: datetime) -> AppState:
    from dataclasses import replace

    mine = state.pending_deployment_id == d.id
    return replace(state, active_deployment_id=d.id, active_version_key=rank_of(d).version_key,
                   pending_deployment_id="" if mine else state.pending_deployment_id,
                   pending_version_key="" if mine else state.pending_version_key, updated_at=now)


@dataclass(frozen=True)
class Live:
    """What serves once a deployment succeeded (the app state's live fields)."""

    revision: str
    image: str = ""
    digest: str = ""
    tag: str = ""


def released(state: AppState, d: Deployment, now: datetime, live: Live | None = None) -> AppState:
    """The app state once `d` has ended: the app is free, its digest no longer in flight, and (when
    it went live) the live fields describe it."""
    from dataclasses import replace

    changes: dict[str, Any] = {
        "inflight_digests": tuple(x for x in state.inflight_digests if x != d.digest),
        "last_deployment_id": d.id,
        "last_phase": d.phase.value,
        "updated_at": now,
    }
    if state.active_deployment_id == d.id:
        changes.update(active_deployment_id="", active_version_key="")
    if state.pending_deployment_id == d.id:
        changes.update(pending_deployment_id="", pending_version_key="")
    if live:
        # A rollback that puts the live revision back (a drift repair) keeps its version's rank.
        same = d.kind != DeploymentKind.PUSH and live.revision == state.live_revision
        changes["live_version_key"] = state.live_version_key if same else rank_of(d).version_key
        changes.update(
            live_deployment_id=d.id,
            live_revision=live.revision,
            live_image=live.image,
            live_digest=live.digest,
            live_tag=live.tag,
            live_since=now,
        )
        if d.environment:
            changes["environment"] = d.environment
    return replace(state, **changes)


# --------------------------------------------------------------------------- traffic plan


def shift_steps(settings: RolloutSettings) -> tuple[int, ...]:
    """Traffic percentages for the new revision, step by step, always ending at 100."""
    if settings.strategy != Strategy.CANARY:
        return (100,)
    steps = tuple(sorted({int(s) for s in settings.steps if 0 < int(s) <= 100}))
    return steps if steps and steps[-1] == 100 else steps + (100,)


def verify_checks(settings: RolloutSettings) -> tuple[SmokeCheck, ...]:
    """Checks against the app's URL after each shift: the rule's, else its smoke checks (so a canary
    is never promoted unobserved)."""
    return settings.verify or settings.smoke or (SmokeCheck(),)


def smoke_checks(settings: RolloutSettings) -> tuple[SmokeCheck, ...]:
    return settings.smoke or (SmokeCheck(),)


# --------------------------------------------------------------------------- check runs


class Verdict(str, Enum):
    AGAIN = "again"  # attempt the (next) check now
    RETRY = "retry"  # the last attempt failed: wait the back-off, then attempt again
    PASSED = "passed"  # every check reached its consecutive passes
    FAILED = "failed"  # a check ran out of retries


def after_attempt(run: CheckRun, checks: Sequence[SmokeCheck], ok: bool) -> tuple[CheckRun, Verdict]:
    """Count one attempt of `checks[run.index]`. A check passes after `consecutive_passes` passes in
    a row; a failure resets that count, and more than `retries` failures fail the whole run."""
    check = checks[run.index]
    attempts = run.attempts + 1
    if ok:
        passes = run.passes + 1
        if passes >= max(check.consecutive_passes, 1):
            if run.index + 1 >= len(checks):
                return CheckRun(run.index, passes, run.failures, attempts), Verdict.PASSED
            return CheckRun(run.index + 1, 0, 0, attempts), Verdict.AGAIN
        return CheckRun(run.index, passes, run.failures, attempts), Verdict.AGAIN
    failures = run.failures + 1
    if failures > max(check.retries, 0):
        return CheckRun(run.index, 0, failures, attempts), Verdict.FAILED
    return CheckRun(run.index, 0, failures, attempts), Verdict.RETRY


def backoff_s(check: SmokeCheck, failures: int, cap: float = 60.0) -> float:
    """Exponential back-off after the `failures`-th failure (1-based)."""
    return min(max(check.backoff_s, 0.0) * (2 ** max(failures - 1, 0)), cap)


# --------------------------------------------------------------------------- revisions


def deactivation_plan(
    revisions: Iterable[RevisionInfo], live: str, previous: Mapping[str, int], keep_previous: int
) -> list[str]:
    """Which active revisions to deactivate once `live` serves everything: all except `live`, the
    `keep_previous` most useful earlier ones (those that served before, heaviest then newest, then
    other recent ones) kept warm for an instant rollback, and anything labelled or still receiving
    traffic (someone else's business)."""
    candidates = [
        r for r in revisions
        if r.active and r.name != live and not r.labels and r.traffic_weight == 0
    ]
    ranked = sorted(
        candidates,
        key=lambda r: (-previous.get(r.name, 0), r.name not in previous, -_ts(r)),
    )
    keep = {r.name for r in ranked[: max(keep_previous, 0)] if not r.failed}
    return [r.name for r in candidates if r.name not in keep]


def _ts(revision: RevisionInfo) -> float:
    return revision.created.timestamp() if revision.created else 0.0


def live_revision(weights: Mapping[str, int]) -> str:
    """The revision with the most traffic ("" when nothing serves); earlier entries win ties."""
    best, weight = "", 0
    for name, w in weights.items():
        if w > weight:
            best, weight = name, w
    return best


def normalise_revision(app: str, name: str) -> str:
    """Accept a full revision name or just its suffix."""
    name = (name or "").strip()
    if not name:
        return ""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise InvalidRequestError(f"{name!r} is not a revision name (lowercase letters, digits and '-')")
    return name if name.startswith(f"{app}--") else revision_name(app, name)


def rollback_target(
    app: str, revisions: Sequence[RevisionInfo], weights: Mapping[str, int], requested: str = ""
) -> RevisionInfo:
    """The revision a manual rollback returns to: the named one, or the newest revision created
    before the one serving now that did not fail (active ones first: they switch instantly).
    Raises NotFoundError / ConflictError with the reason a release manager can act on."""
    current = live_revision(weights)
    by_name = {r.name: r for r in revisions}
    if requested:
        name = normalise_revision(app, requested)
        target = by_name.get(name)
        if target is None:
            raise NotFoundError(f"app {app} has no revision {name}")
        if target.failed or (target.active and target.health_state.lower() == "unhealthy"):
            raise ConflictError(f"revision {name} is not healthy (provisioning {target.provisioning_state}, "
                                f"running {target.running_state}); refusing to send traffic to it")
        if weights.get(name, 0) == 100:
            raise ConflictError(f"revision {name} already serves all traffic of {app}")
        return target
    now_rev = by_name.get(current)
    cutoff = now_rev.created if now_rev else None
    older = [
        r for r in revisions
        if r.name != current and not r.failed
        and not (r.active and r.health_state.lower() == "unhealthy")
        and (cutoff is None or r.created is None or _ts(r) < cutoff.timestamp())
    ]
    if not older:
        raise ConflictError(f"app {app} has no earlier healthy revision to roll back to")
    older.sort(key=lambda r: (r.active, _ts(r)), reverse=True)
    return older[0]


def rollback_table(d: Deployment) -> dict[str, int]:
    """Traffic after a failed shift: back to what served before, without the new revision."""
    return traffic.restore(d.previous_traffic, exclude=d.revision)
