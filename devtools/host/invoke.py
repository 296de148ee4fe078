"""Run one function invocation the way the Python worker does, and log one line about it.

The line looks like func start's ("Executed 'Functions.NAME' (Succeeded, Id=..., Duration=12ms)")
plus the trigger type. It never carries request bodies, messages or keys.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from devtools.host.functions import FunctionSpec

log = logging.getLogger("devtools.host")


@dataclass(frozen=True)
class Context:
    """The subset of func.Context that a `context` parameter usually reads."""

    invocation_id: str
    function_name: str
    function_directory: str
    retry_context: Any = None
    trace_context: Any = None


class Invoker:
    """Calls user functions, counts what is in flight so `drain()` can wait for it on shutdown."""

    def __init__(self, app_dir: str) -> None:
        self._app_dir = app_dir
        self._in_flight = 0
        self._cond = threading.Condition()

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    def invoke(self, spec: FunctionSpec, trigger_value: Any, *, detail: str = "") -> Any:
        """Returns what the function returned; re-raises what it raised (after logging)."""
        invocation_id = str(uuid.uuid4())
        kwargs = {spec.arg_name: trigger_value}
        params = inspect.signature(spec.callable).parameters
        if "context" in params and spec.arg_name != "context":
            kwargs["context"] = Context(invocation_id, spec.name, self._app_dir)
        with self._cond:
            self._in_flight += 1
        started = time.perf_counter()
        suffix = f", {detail}" if detail else ""
        try:
            result = spec.callable(**kwargs)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
        except BaseException as exc:
            elapsed = (time.perf_counter() - started) * 1000
            log.error(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms, Trigger=%s%s): %s: %s",
                spec.name, invocation_id, elapsed, spec.trigger_type, suffix, type(exc).__name__, exc,
                exc_info=not isinstance(exc, (KeyboardInterrupt, SystemExit)),
            )
            raise
        else:
            elapsed = (time.perf_counter() - started) * 1000
            log.info(
                "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms, Trigger=%s%s)",
                spec.name, invocation_id, elapsed, spec.trigger_type, suffix,
            )
            return result
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def drain(self, timeout_s: float) -> bool:
        """Wait (bounded) until no invocation runs; True if it got there."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True


async def _await(awaitable: Any) -> Any:
    return await awaitable
