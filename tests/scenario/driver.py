"""A small, bounded stand-in for the Functions host's queue trigger, for scenario tests and benchmarks.

Receives from the Azurite queue, hands each body to `shared.entrypoints.handle_rollout_message`
(exactly what `function_app.rollout_step` calls) with the message's dequeue count, deletes the
message on success and leaves it on failure (it reappears after the visibility timeout, like the
host does). Visibility delays are Azurite's own. Bounded in messages and in time.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from shared import entrypoints


class QueueDriver:
    def __init__(
        self,
        queue: Any,  # StorageRolloutQueue
        handler: Callable[[str, int], None] = entrypoints.handle_rollout_message,
        visibility_timeout: int = 5,
        poll_s: float = 0.05,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.visibility_timeout = visibility_timeout
        self.poll_s = poll_s
        self.handled = 0
        self.failures: list[str] = []
        self.lost_deletes: list[str] = []  # handled after its visibility ran out (the host logs these too)

    def step(self, max_messages: int = 16) -> int:
        """One receive: handle what is visible now. Returns how many messages it handled."""
        batch = self.queue.receive(max_messages=max_messages, visibility_timeout=self.visibility_timeout)
        for body, handle in batch:
            self.handled += 1
            try:
                self.handler(json.dumps(body), int(getattr(handle, "dequeue_count", 1) or 1))
            except (Exception, _Crash) as exc:  # noqa: BLE001 - the host logs and lets it reappear
                self.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            try:
                self.queue.delete(handle)
            except Exception as exc:  # noqa: BLE001 - the message reappeared and another pump took it
                self.lost_deletes.append(f"{type(exc).__name__}")
        return len(batch)

    def run(self, until: Callable[[], bool] | None = None, timeout_s: float = 30.0,
            max_messages: int = 2000, idle_s: float = 1.5) -> int:
        """Deliver until `until()` holds (or, without one, until the queue has been empty for
        `idle_s`). Raises TimeoutError when the bound is reached first."""
        deadline = time.monotonic() + timeout_s
        start = self.handled
        idle_since = time.monotonic()
        while time.monotonic() < deadline and self.handled - start < max_messages:
            if until is not None and until():
                return self.handled - start
            if self.step():
                idle_since = time.monotonic()
                continue
            if until is None and time.monotonic() - idle_since >= idle_s:
                return self.handled - start
            time.sleep(self.poll_s)
        if until is not None and until():
            return self.handled - start
        raise TimeoutError(f"queue driver bound reached after {self.handled - start} messages "
                           f"(failures: {self.failures[-3:]})")


class _Crash(BaseException):
    """Base of simulated process deaths (tests subclass it): not an Exception, so the worker's own
    error handling cannot see it, exactly like a killed process."""


Crash = _Crash
