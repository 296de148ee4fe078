"""Retention: the partitions that only record (dismissed events, the cross-app day index) are
purged after `ACR_DEPLOY_RETENTION_DAYS`, in bounded batches, from the sweep timer.

The sweep runs every minute; a purge with nothing to do still costs a query, so it runs at most
once per `interval` unless the last run filled its batch (a backlog, e.g. the first run after an
upgrade), which it then drains one batch per sweep. A deployment's own rows (its app partition)
are never purged: the story of what is live stays, whatever its age.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from shared.domain.model import utcnow
from shared.ports import RecordRetention

log = logging.getLogger("acr_deploy.retention")

BATCH = 1000  # rows per run: one sweep stays short
INTERVAL_S = 3600.0


@dataclass
class RetentionPurger:
    store: RecordRetention
    days: int
    batch: int = BATCH
    interval_s: float = INTERVAL_S
    clock: Callable[[], datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic
    _next_run: float = field(default=float("-inf"), init=False)

    def purge(self) -> int:
        """One bounded batch when due; returns the rows deleted (0 when not due)."""
        now = self.monotonic()
        if now < self._next_run:
            return 0
        deleted = self.store.purge_records(self.clock() - timedelta(days=self.days), self.batch)
        self._next_run = now if deleted >= self.batch else now + self.interval_s
        if deleted:
            log.info("retention: purged %d record rows older than %d days", deleted, self.days)
        return deleted
