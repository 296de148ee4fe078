"""What every part of the rollout works with: the ports (`shared.ports`), the clock and the time budget.

One frozen value, built by the worker and handed to the phases, checks, endings, records, sweeper and
manual rollback. Tests build it with fakes (in-memory store, virtual clock, a probe that fails on cue).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from shared.domain.model import Deployment, utcnow
from shared.ports import (
    ContainerAppsPort, DeploymentStore, OutcomePublisher, RequestMetrics, RolloutQueue, SmokeProbe,
)

# Records a deployment that a start message carries but the store lacks (intake died after
# enqueueing); returns the stored deployment, or None when it is now a duplicate. Intake's
# `ensure_recorded`, wired by the composition root.
Recover = Callable[[Deployment], "Deployment | None"]


@dataclass(frozen=True)
class RolloutContext:
    store: DeploymentStore
    queue: RolloutQueue
    apps: ContainerAppsPort
    probe: SmokeProbe
    publisher: OutcomePublisher | None = None
    clock: Callable[[], datetime] = utcnow
    budget_s: float = 8.0  # inline steps per invocation stop after this long; a message carries on
    tick_s: float = 0.2  # waits up to this long are slept inline; longer ones become messages
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    on_saved: Callable[[Deployment], None] | None = None  # tests: a crash hook after every record
    recover: Recover | None = None  # None: a start message for an unknown deployment is dropped
    metrics: RequestMetrics | None = None  # Azure Monitor, for rules with rollout.analysis
