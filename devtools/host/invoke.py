"""Run one function invocation the way the Python worker does, and log one line about it.

The trigger sends what the Functions host sends the worker: the data as a `meta.Datum` plus the
trigger metadata. The argument is decoded by the converter the worker would pick (the binding's
own, or "generic" for a str/bytes annotation), and a `$return` value is encoded by its binding's
converter, so a type the worker cannot convert fails here as it fails in Azure.

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

from azure.functions import meta

from devtools.host.functions import FunctionSpec
from devtools.host.indexing import converter

log = logging.getLogger("devtools.host")


@dataclass(frozen=True)
class Context:
    """The subset of func.Context that a `context` parameter usually reads."""

    invocation_id: str
    function_name: str
    function_directory: str
    retry_context: Any = None
    trace_context: Any = None


class _Out:
    """What the worker passes for a func.Out[...] parameter (bindings/out.py)."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


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

    def invoke(self, spec: FunctionSpec, data: meta.Datum,
               metadata: dict[str, meta.Datum] | None = None, *, detail: str = "") -> meta.Datum | None:
        """Decode `data` for the trigger parameter, call the function, and return its `$return`
        value encoded by that binding's converter (None without a `$return` binding). Re-raises
        what the function or a converter raised (after logging)."""
        invocation_id = str(uuid.uuid4())
        with self._cond:
            self._in_flight += 1
        started = time.perf_counter()
        suffix = f", {detail}" if detail else ""
        try:
            kwargs = self._arguments(spec, data, metadata or {}, invocation_id)
            result = spec.callable(**kwargs)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
            encoded = self._encode_return(spec, result)
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
            return encoded
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _arguments(self, spec: FunctionSpec, data: meta.Datum, metadata: dict[str, meta.Datum],
                   invocation_id: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            spec.arg_name: converter(spec.trigger_binding).decode(data, trigger_metadata=metadata)}
        signature = spec.signature
        if signature is not None:
            for name in signature.inputs:
                kwargs.setdefault(name, None)  # other input bindings are not served (warned at start)
            for name in signature.outputs:
                kwargs[name] = _Out()  # output bindings are not served: the value is dropped
            if signature.requires_context:
                kwargs["context"] = Context(invocation_id, spec.name, self._app_dir)
        elif "context" in inspect.signature(spec.callable).parameters and spec.arg_name != "context":
            kwargs["context"] = Context(invocation_id, spec.name, self._app_dir)
        return kwargs

    @staticmethod
    def _encode_return(spec: FunctionSpec, result: Any) -> meta.Datum | None:
        binding = spec.signature.return_binding if spec.signature else None
        if binding is None:
            return None  # the worker ignores a return value without a `$return` binding
        if result is None:
            return meta.Datum(None, None)
        try:
            return converter(binding).encode(result, expected_type=None)
        except NotImplementedError as exc:  # the worker's to_outgoing_proto message
            raise TypeError(f'unable to encode outgoing TypedData: unsupported type "{binding}" '
                            f'for Python type "{type(result).__name__}"') from exc

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
