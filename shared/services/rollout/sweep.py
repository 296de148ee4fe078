"""The sweeper (timer, every minute): the safety net for lost messages, deadlines and held apps.

Active deployments past their deadline are stepped (the step handler fails or rolls them back); one
with no progress and no wake-up due for `STALE_AFTER_S` gets its advance message again; an app held
by a finished or missing deployment is freed.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable

from shared.domain import rollout as plan
from shared.domain.model import Deployment
from shared.ports import DeploymentQuery
from shared.services.rollout.context import RolloutContext
from shared.services.rollout.messages import advance_message_of
from shared.services.rollout.records import Recorder

log = logging.getLogger("acr_deploy.rollout")

STALE_AFTER_S = 120.0  # sweeper: no progress and no wake due for this long -> re-send a message
SWEEP_LOOKBACK = timedelta(days=2)


class Sweeper:
    def __init__(self, ctx: RolloutContext, recorder: Recorder, run: Callable[[Deployment], None]) -> None:
        self.ctx = ctx
        self.recorder = recorder
        self.run = run  # the worker's step loop

    def sweep(self) -> dict[str, int]:
        """Fail/finish rollouts past their deadline, re-send lost messages, free apps held by
        finished deployments. Returns counts (for logs and tests)."""
        store = self.ctx.store
        now = self.ctx.clock()
        counts = {"expired": 0, "resent": 0, "released": 0}
        continuation = None
        seen: set[str] = set()
        for _ in range(20):  # bounded: 20 pages of active deployments
            page = store.list_deployments(DeploymentQuery(
                status="active", since=now - SWEEP_LOOKBACK, limit=100, continuation=continuation))
            for d in page.items:
                seen.add(d.id)
                try:
                    outcome = self._sweep_one(d, now)
                    if outcome in counts:
                        counts[outcome] += 1
                except Exception as exc:  # noqa: BLE001 - one bad record must not stop the sweep
                    log.warning("sweep %s: %s: %s", d.id, type(exc).__name__, str(exc)[:300])
            continuation = page.continuation
            if not continuation:
                break
        for state in store.list_apps():
            holder_id = state.active_deployment_id
            if not holder_id or holder_id in seen:
                continue
            try:
                holder = store.get_deployment(holder_id, app=state.target.app)
                if holder is None:
                    store.save_app_state(replace(state, active_deployment_id="", updated_at=now))
                    counts["released"] += 1
                elif holder.phase.terminal:
                    self.recorder.settle(holder)
                    counts["released"] += 1
                elif plan.past_deadline(holder, now):
                    self._sweep_one(holder, now)
                    counts["expired"] += 1
            except Exception as exc:  # noqa: BLE001
                log.warning("sweep app %s: %s: %s", state.target.app, type(exc).__name__, str(exc)[:300])
        return counts

    def _sweep_one(self, d: Deployment, now: datetime) -> str:
        if plan.past_deadline(d, now):
            self.run(d)  # the step handler sees the deadline and fails / rolls back
            return "expired"
        wake_at = d.progress.wake_at
        due = wake_at is None or now >= wake_at + timedelta(seconds=STALE_AFTER_S)
        if due and now - d.updated_at >= timedelta(seconds=STALE_AFTER_S):
            self.ctx.queue.send(advance_message_of(d))
            return "resent"
        return "none"
