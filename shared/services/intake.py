"""Intake: one Event Grid delivery in, deployments recorded and enqueued, answered fast.

Per event: parse + validate (pure) → trust (pure) → plan targets (the rule book) → per target:
read the app's state row (1 round trip) → decide (pure) → **enqueue the start message first**
(round trip 2) → record deployment + first event + new state in one Table transaction (round trip 3).

Why enqueue first: if the process dies after the enqueue, the message carries the whole deployment
and the worker records it (`ensure_recorded`); if it dies before, nothing was written and Event Grid
redelivers. Recording first would leave a deployment nobody ever rolls out.

Bad input never raises (it is recorded as ignored/rejected/skipped and acknowledged). Storage
failures do raise: then a redelivery is exactly what helps, and the deterministic deployment id
makes it collapse into the same deployment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

from shared import telemetry
from shared.domain.approvals import ControlProgress
from shared.domain.controls import PROMOTION_SOURCE, Promotion
from shared.domain.events import IMAGE_PUSHED, NotDeployable, parse_event, parse_time
from shared.domain.intake_policy import Candidate, IntakeVerdict, decide
from shared.domain.model import (
    Deployment, DeploymentEvent, IgnoredEvent, ImagePush, Phase, PlannedDeployment, utcnow,
)
from shared.domain.trust import TrustedRegistry, trusted_registries, untrusted_reason
from shared.ports import ConcurrencyError, DeploymentRepository, RolloutQueue
from shared.services.rollout.messages import start_message

if TYPE_CHECKING:  # annotations only: intake imports no settings parser and no rules engine at run time
    from shared.domain.rules.planning import PlanResult
    from shared.settings import Settings

log = logging.getLogger("acr_deploy.intake")

MAX_ATTEMPTS = 5  # per target: re-read and decide again after a lost ETag race, then give up (raise)


@dataclass
class TargetOutcome:
    app: str
    target: str  # Target.key
    verdict: str  # accepted | recorded | duplicate | older
    reason: str
    deployment_id: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass
class IntakeResult:
    """What happened to one event (JSON-able for logs, tests and the webhook's answer)."""

    outcome: str  # accepted | ignored | rejected | skipped
    reason: str
    event_id: str = ""
    image: str = ""
    targets: list[TargetOutcome] = field(default_factory=list)
    validation_code: str = ""  # SubscriptionValidation: echo as {"validationResponse": code}

    @property
    def accepted(self) -> list[str]:
        return [t.deployment_id for t in self.targets if t.verdict == "accepted"]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "outcome": self.outcome, "reason": self.reason, "event_id": self.event_id,
            "image": self.image, "targets": [t.to_dict() for t in self.targets],
            "accepted": self.accepted,
        }
        if self.validation_code:
            data["validation_response"] = {"validationResponse": self.validation_code}
        return data


class RulePlanner(Protocol):
    """Where a push goes (`shared.services.rulesource.RuleBook`)."""

    def plan(self, push: ImagePush) -> PlanResult: ...

    def trusted_registries(self) -> list[str]: ...


class IntakeService:
    def __init__(self, settings: Settings, rules: RulePlanner, store: DeploymentRepository, queue: RolloutQueue,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.rules = rules
        self.store = store
        self.queue = queue
        self.clock = clock
        self._trusted: tuple[TrustedRegistry, ...] | None = None

    # ------------------------------------------------------------------ entry points
    def handle_batch(self, events: Iterable[Any]) -> list[IntakeResult]:
        """A delivered array (HTTP webhook): each event on its own; one bad event spoils nothing."""
        if not isinstance(events, list):
            return [self.handle(events)]
        return [self.handle(event) for event in events[:1000]]  # Event Grid batches hold ≤ 5,000

    def handle(self, raw: Any) -> IntakeResult:
        with telemetry.current().span("acr_deploy.intake"):
            return self._handle(raw)

    def _handle(self, raw: Any) -> IntakeResult:
        parsed = parse_event(raw)
        if isinstance(parsed, NotDeployable):
            return self._dismiss(parsed, raw)
        push: ImagePush = parsed
        reason = untrusted_reason(push.event_source, push.registry, self.trusted())
        if not reason:
            reason = future_reason(push.event_time, self.clock())
        if reason:
            return self._dismiss_push(push, "rejected", reason)
        plan = self.rules.plan(push)
        planned = list(getattr(plan, "deployments", None) or [])
        if not planned:
            return self._dismiss_push(push, "ignored", _no_target_reason(push, plan))
        targets = [self._admit(p) for p in planned]
        if any(t.verdict == "accepted" for t in targets):
            outcome, reason = "accepted", f"{len([t for t in targets if t.verdict == 'accepted'])} deployment(s) queued"
        elif all(t.verdict == "recorded" for t in targets):
            outcome, reason = "accepted", "already recorded (redelivery)"
        else:
            outcome, reason = "skipped", "; ".join(t.reason for t in targets)
        return IntakeResult(outcome, reason, push.event_id, push.image, targets)

    def trusted(self) -> tuple[TrustedRegistry, ...]:
        if self._trusted is None:
            from_rules: Iterable[Any] = ()
            getter = getattr(self.rules, "trusted_registries", None)
            if getter is not None:
                from_rules = getter() or ()
            self._trusted = trusted_registries([*getattr(self.settings, "registries", ()), *from_rules])
        return self._trusted

    # ------------------------------------------------------------------ per target
    def promote(self, source: Deployment, promotion: Promotion) -> list[TargetOutcome]:
        """The digest `source` made live, planned again for `promotion.to` by that app's own rules
        (approval and freezes included), queued to start after the soak time. The id derives from
        the source deployment: announcing its success twice records one promotion."""
        push = ImagePush(
            event_id=f"promotion-{source.id}-{promotion.to}", event_source=f"{PROMOTION_SOURCE}{source.id}",
            event_time=source.created_at, registry=source.registry, repository=source.repository,
            tag=source.tag, digest=source.digest, actor=f"promotion of {source.id} ({source.target.app})",
        )
        plans = [p for p in self.rules.plan(push).deployments if p.target.app == promotion.to
                 and (not promotion.resource_group or p.target.resource_group == promotion.resource_group)]
        not_before = self.clock() + timedelta(seconds=promotion.after_s)
        soak = ControlProgress(promoted_from=source.id, not_before=not_before)
        return [self._admit(p, soak) for p in plans]

    def _admit(self, plan: PlannedDeployment, promotion: ControlProgress | None = None) -> TargetOutcome:
        now = self.clock()
        deployment = Deployment.from_plan(plan, now)
        how = f"pushed by {plan.push.actor or 'unknown'}"
        if promotion is not None:
            # The soak is a wait before the rollout begins: the rule's deadline counts from its end.
            deployment = deployment.evolve(deadline=promotion.not_before + timedelta(
                seconds=plan.rollout.deadline_s)).with_progress(controls=promotion)
            how = f"promoted from {promotion.promoted_from}; starts after {promotion.not_before:%H:%M:%S} UTC"
        first = DeploymentEvent(
            deployment_id=deployment.id, at=now, phase=Phase.QUEUED,
            message=(f"queued {plan.push.repository}:{plan.push.tag} for {plan.target.app} "
                     f"(rule {plan.rule}, {plan.source}); {how}"),
            data={"event_id": plan.push.event_id, "event_source": plan.push.event_source,
                  "schema": plan.push.schema, "media_type": plan.push.media_type},
        )
        # The start message carries this span's context: the rollout's steps continue the push's trace.
        with telemetry.current().span("acr_deploy.intake.target", telemetry.deployment_attributes(deployment)):
            outcome = _record(self.store, Candidate.from_plan(plan), deployment, first, now,
                              before_write=lambda: self.queue.send(start_message(deployment)))
        verdict, reason = outcome
        if verdict in (IntakeVerdict.DUPLICATE, IntakeVerdict.OLDER):
            self._record_ignored(_skip_record(plan.push, plan.target.app, reason))
        log.info("intake %s: %s -> %s: %s (%s)", plan.push.event_id[:64], plan.push.image[:200],
                 plan.target.app, verdict, deployment.id)
        label = "accepted" if verdict == IntakeVerdict.ACCEPT else str(verdict)
        return TargetOutcome(plan.target.app, plan.target.key, label, reason, deployment.id)

    # ------------------------------------------------------------------ dismissals
    def _dismiss(self, parsed: NotDeployable, raw: Any) -> IntakeResult:
        at = None
        if isinstance(raw, dict):
            at = parse_time(raw.get("eventTime")) or parse_time(raw.get("time"))
        item = IgnoredEvent(
            at=at or self.clock(), outcome=parsed.outcome, reason=parsed.reason,
            event_id=parsed.event_id, event_type=parsed.event_type, registry=parsed.registry,
            repository=parsed.repository, tag=parsed.tag, digest=parsed.digest,
        )
        self._record_ignored(item)
        log.info("intake %s: %s (%s)", parsed.event_id[:64] or "-", parsed.outcome, parsed.reason)
        return IntakeResult(parsed.outcome, parsed.reason, parsed.event_id,
                            validation_code=parsed.validation_code)

    def _dismiss_push(self, push: ImagePush, outcome: str, reason: str) -> IntakeResult:
        self._record_ignored(_push_record(push, outcome, reason))
        log.info("intake %s: %s %s (%s)", push.event_id[:64], outcome, push.image[:200], reason)
        return IntakeResult(outcome, reason, push.event_id, push.image)

    def _record_ignored(self, item: IgnoredEvent) -> None:
        """Best effort: the outcome is already decided and logged; a failed write must not make
        Event Grid redeliver an event we will dismiss again."""
        try:
            self.store.record_ignored(item)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not record %s event %s: %s", item.outcome, item.event_id[:64],
                        type(exc).__name__)


MAX_CLOCK_SKEW = timedelta(minutes=5)


def future_reason(event_time: datetime, now: datetime) -> str:
    """Pushes are ranked by event time (for the same version): one dated years ahead would outrank
    every later push to its app forever. Beyond a few minutes of clock skew it is rejected."""
    if event_time - now > MAX_CLOCK_SKEW:
        return (f"event time {event_time.isoformat()} is more than {int(MAX_CLOCK_SKEW.total_seconds() // 60)}"
                f" minutes after the time it arrived ({now.replace(microsecond=0).isoformat()})")
    return ""


def _no_target_reason(push: ImagePush, plan: Any) -> str:
    explain = getattr(plan, "reason", None)
    if callable(explain):  # the rule book's own one-line explanation
        text = explain()
        if isinstance(text, str) and text:
            return f"no rule deploys {push.repository}:{push.tag}: {text}"[:1000]
    reason = f"no rule deploys {push.repository}:{push.tag}"
    details = []
    for decision in list(getattr(plan, "decisions", None) or [])[:5]:
        text = getattr(decision, "reason", None)
        text = text if isinstance(text, str) else str(decision)
        name = getattr(decision, "rule", None)
        details.append(f"{name}: {text}" if isinstance(name, str) and name else text)
    if details:
        reason += " (" + "; ".join(d[:200] for d in details) + ")"
    return reason[:1000]


def _push_record(push: ImagePush, outcome: str, reason: str, app: str = "") -> IgnoredEvent:
    """The record of a well-formed push that was not deployed (to `app`, when one was chosen)."""
    return IgnoredEvent(
        at=push.event_time, outcome=outcome, reason=reason, event_id=push.event_id,
        event_type=IMAGE_PUSHED, registry=push.registry, repository=push.repository,
        tag=push.tag, digest=push.digest, app=app,
    )


def _skip_record(push: ImagePush, app: str, reason: str) -> IgnoredEvent:
    return _push_record(push, "skipped", reason, app)


def _record(store: DeploymentRepository, candidate: Candidate, deployment: Deployment,
            first: DeploymentEvent, now: datetime,
            before_write: Callable[[], None] | None = None) -> tuple[IntakeVerdict, str]:
    """Read state, decide, (enqueue), write; on a lost race re-read and decide again (bounded).
    Returns the final verdict and its reason; raises ConcurrencyError only when every attempt lost."""
    sent = False
    last_error: ConcurrencyError | None = None
    for _ in range(MAX_ATTEMPTS):
        state = store.get_app_state(candidate.target)
        decision = decide(candidate, state, now)
        if decision.verdict != IntakeVerdict.ACCEPT:
            return decision.verdict, decision.reason
        if before_write is not None and not sent:
            before_write()
            sent = True
        try:
            store.create_deployment(deployment, first, decision.state)
            return IntakeVerdict.ACCEPT, "accepted"
        except ConcurrencyError as exc:
            last_error = exc
            # The same event delivered concurrently computes the same id: if it is recorded, stop.
            # (app=: a point read in the app's partition; the cross-app index lags behind intake.)
            if store.get_deployment(deployment.id, app=candidate.target.app) is not None:
                return IntakeVerdict.RECORDED, f"deployment {deployment.id} is already recorded"
    raise ConcurrencyError(
        f"app state of {candidate.target.app} kept changing; gave up after {MAX_ATTEMPTS} attempts"
    ) from last_error


def ensure_recorded(store: DeploymentRepository, deployment: Deployment) -> Deployment | None:
    """For the rollout worker: a start message names a deployment the store does not have (intake
    died between enqueue and its table write, or lost a race after enqueueing). Re-apply the same
    decision and record it; return the stored deployment, or None when it is now a duplicate or an
    older version (recorded as skipped; the worker drops the message)."""
    # app=: intake's record is in the app's partition before the cross-app index has it.
    existing = store.get_deployment(deployment.id, app=deployment.target.app)
    if existing is not None:
        return existing
    now = utcnow()
    fresh = deployment.evolve(phase=Phase.QUEUED, etag=None, updated_at=now)
    first = DeploymentEvent(
        deployment_id=fresh.id, at=now, phase=Phase.QUEUED,
        message=(f"queued {fresh.repository}:{fresh.tag} for {fresh.target.app} (recorded by the "
                 "rollout worker: intake stopped after enqueueing)"),
        data={"event_id": fresh.event_id, "recovered": True},
    )
    verdict, reason = _record(store, Candidate.from_deployment(fresh), fresh, first, now)
    if verdict in (IntakeVerdict.ACCEPT, IntakeVerdict.RECORDED):
        return store.get_deployment(fresh.id, app=fresh.target.app)
    try:
        store.record_ignored(IgnoredEvent(
            at=fresh.created_at, outcome="skipped", reason=reason, event_id=fresh.event_id,
            event_type=IMAGE_PUSHED, registry=fresh.registry, repository=fresh.repository,
            tag=fresh.tag, digest=fresh.digest, app=fresh.target.app,
        ))
    except Exception as exc:  # noqa: BLE001 - the verdict stands; the record is best effort
        log.warning("could not record skipped deployment %s: %s", fresh.id, type(exc).__name__)
    log.info("recovery of %s: %s (%s)", fresh.id, verdict, reason)
    return None
