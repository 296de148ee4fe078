"""The rollout: one queue message at a time, a deployment becomes a verified traffic shift or a rollback.

Read in this order (docs/architecture.md section 5 follows one message through them):

    worker.py           RolloutWorker: entry points (message, sweep, manual rollback) and the step loop
    messages.py         the queue message format (intake's start message, the wake-ups)
    context.py          RolloutContext: the ports, clock and time budget every part works with
    step.py             Step: what a handler decided (record what, then continue / wait / done / act)
    phases.py           Phases: one step (deadline, ownership, supersede) and each phase's handler
    checks.py           CheckRunner: smoke / verify attempts, retries, back-off
    analysis.py         CanaryAnalysis: each traffic step judged on Azure Monitor's request metrics
    endings.py          Endings: succeed, fail, roll back, supersede, expire, Azure errors, give up
    records.py          Recorder: save (ETag + crash hook), schedule wake-ups, release the app, publish
    sweep.py            Sweeper: deadlines, lost messages, apps held by finished deployments
    manual_rollback.py  RollbackRequests: manual rollback requests

The decisions themselves are pure: `shared.domain.rollout`, `shared.domain.traffic`; the progress a
deployment records is `shared.domain.progress`.
"""

from shared.services.rollout.endings import MAX_TRANSIENT
from shared.services.rollout.phases import READY_POLL_S, WAIT_FOR_APP_S
from shared.services.rollout.sweep import STALE_AFTER_S, SWEEP_LOOKBACK
from shared.services.rollout.worker import MAX_DEQUEUE, MAX_STEPS, RolloutWorker

__all__ = [
    "MAX_DEQUEUE", "MAX_STEPS", "MAX_TRANSIENT", "READY_POLL_S", "STALE_AFTER_S", "SWEEP_LOOKBACK",
    "WAIT_FOR_APP_S", "RolloutWorker",
]
