"""What a step handler decides: the deployment to record (or just carry), history lines, what comes next.

Handlers never save. The loop (`worker.py`) records a `Step` with the deployment's ETag, frees the app
when the recorded phase is terminal, then follows `next`:

    Continue   the next step now, inline, while the time budget lasts
    Wait(s)    a tick or less: slept inline; longer: a delayed wake-up message
    Done       nothing more for this message (finished, or dropped)
    Then(act)  run `act` on the recorded deployment: an Azure change that must be recorded as
               decided first (a crash after it resumes from the record); `act` returns the next Step
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Union

from shared.domain import rollout as plan
from shared.domain.model import Deployment, DeploymentEvent, Phase


@dataclass(frozen=True)
class Continue:
    pass


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Then:
    act: Callable[[Deployment], "Step"]
    # What an Azure error raised by `act` leads to; None: the step's usual answer to Azure errors.
    on_error: Callable[[Deployment, Exception], "Step"] | None = None


Next = Union[Continue, Wait, Done, Then]
CONTINUE = Continue()
DONE = Done()


@dataclass(frozen=True)
class Step:
    deployment: Deployment
    events: tuple[DeploymentEvent, ...] = ()
    record: bool = False  # save `deployment` (with `events`) before following `next`
    next: Next = CONTINUE


def recorded(d: Deployment, *events: DeploymentEvent, next: Next = CONTINUE) -> Step:
    return Step(d, tuple(events), True, next)


def carried(d: Deployment, next: Next) -> Step:
    """Nothing to record: `d` (with any in-memory facts, e.g. a poll count) goes on to `next`."""
    return Step(d, (), False, next)


def to_phase(d: Deployment, phase: Phase, message: str, now: datetime, *events: DeploymentEvent,
             **data: Any) -> Step:
    """Record the move to `phase` (its history line after `events`) and carry on."""
    d, event = plan.transition(d, phase, message, now, **data)
    return recorded(d, *events, event)


def finish(d: Deployment, phase: Phase, reason: str, now: datetime, *events: DeploymentEvent,
           **data: Any) -> Step:
    """Record a terminal phase; the loop then frees the app and publishes the outcome."""
    d, event = plan.transition(d, phase, reason, now, **data)
    return recorded(d, *events, event, next=DONE)
