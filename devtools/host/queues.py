"""Queue triggers: poll a Storage queue (Azurite locally) the way the Functions queue listener does.

- Gets up to `batchSize` messages; gets the next batch once no more than `newBatchThreshold` are
  still running, so at most batchSize + newBatchThreshold run at once (each on its own thread).
- A received message is leased (invisible) while its function runs; the lease is renewed for
  long runs. Success deletes it. An exception makes it visible again after host.json's
  `visibilityTimeout`, and the next delivery carries a higher `dequeue_count`. After
  `maxDequeueCount` failed deliveries the message moves to `<queue>-poison`, as the host does.
- Polls again at once after finding messages; when idle, backs off exponentially from 100 ms up
  to `maxPollingInterval`.
- `messageEncoding: base64` decodes the stored text before the function sees it; a message that
  is not valid base64 cannot be delivered and goes straight to the poison queue.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.functions import meta
from azure.storage.queue import QueueClient, QueueMessage

from devtools.host.config import QueueOptions, resolve_setting
from devtools.host.functions import FunctionSpec
from devtools.host.invoke import Invoker

log = logging.getLogger("devtools.host")

MIN_POLL_S = 0.1
LEASE_S = 60  # visibility while a function runs; renewed at half-time


def queue_client(connection: str, queue_name: str, env: Mapping[str, str] | None = None) -> QueueClient:
    """Resolve a binding's `connection` the way the host does: `AzureWebJobs<name>`, then
    `<name>` as a connection string, then identity-based `<name>__queueServiceUri` /
    `<name>__accountName` with DefaultAzureCredential."""
    env = os.environ if env is None else env
    conn_str = env.get(f"AzureWebJobs{connection}") or env.get(connection)
    if conn_str:
        return QueueClient.from_connection_string(conn_str, queue_name)
    service_uri = env.get(f"{connection}__queueServiceUri")
    account = env.get(f"{connection}__accountName")
    if service_uri or account:
        from azure.identity import DefaultAzureCredential

        url = service_uri or f"https://{account}.queue.core.windows.net"
        return QueueClient(url, queue_name, credential=DefaultAzureCredential())
    raise LookupError(
        f"queue trigger connection {connection!r} is not set (set it in local.settings.json Values; "
        "Azurite: UseDevelopmentStorage=true)"
    )


def decode_body(content: str, encoding: str) -> bytes:
    if encoding == "base64":
        try:
            return base64.b64decode(content.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise ValueError("message is not valid base64 (host.json messageEncoding is base64)") from exc
    return content.encode("utf-8")


def trigger_data(message: QueueMessage, body: bytes) -> tuple[meta.Datum, dict[str, meta.Datum]]:
    """The queue trigger's data and metadata as the host sends them to the worker: the decoded
    body (a string when it is UTF-8), DequeueCount, Id, PopReceipt and the message's times."""
    try:
        datum = meta.Datum(body.decode("utf-8"), "string")
    except UnicodeDecodeError:
        datum = meta.Datum(body, "bytes")

    def _time(value: Any) -> meta.Datum | None:
        return meta.Datum(value.isoformat(), "string") if value else None

    metadata = {
        "Id": meta.Datum(message.id, "string"),
        "DequeueCount": meta.Datum(int(message.dequeue_count or 1), "int"),
        "PopReceipt": meta.Datum(message.pop_receipt, "string"),
        "InsertionTime": _time(message.inserted_on),
        "ExpirationTime": _time(message.expires_on),
        "NextVisibleTime": _time(message.next_visible_on),
    }
    return datum, {k: v for k, v in metadata.items() if v is not None}


@dataclass
class _Lease:
    message: QueueMessage
    taken_at: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False


class QueueListener:
    def __init__(self, spec: FunctionSpec, options: QueueOptions, invoker: Invoker,
                 client: QueueClient, poison_client: QueueClient) -> None:
        self.spec = spec
        self.queue_name = client.queue_name
        self.options = options
        self.invoker = invoker
        self.client = client
        self.poison = poison_client
        self.capacity = options.batch_size + options.threshold
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._leases: dict[str, _Lease] = {}
        self._threads: list[threading.Thread] = []
        self._last_warning = 0.0

    @classmethod
    def from_env(cls, spec: FunctionSpec, options: QueueOptions, invoker: Invoker) -> "QueueListener":
        name = resolve_setting(spec.queue_name, what=f"function {spec.name} queueName")
        client = queue_client(spec.connection, name)
        poison = queue_client(spec.connection, f"{name}-poison")
        return cls(spec, options, invoker, client, poison)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        for target, name in ((self._poll_loop, "poll"), (self._renew_loop, "renew")):
            thread = threading.Thread(target=target, name=f"devhost-queue-{self.spec.name}-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop fetching; in-flight invocations finish (the host drains them) and settle."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)

    @property
    def in_flight(self) -> int:
        with self._cond:
            return len(self._leases)

    # -- polling --------------------------------------------------------------------------
    def _warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last_warning > 30:
            self._last_warning = now
            log.warning(message, *args)

    def _poll_loop(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            with self._cond:
                # Next batch only once at most newBatchThreshold are still running.
                while len(self._leases) > self.options.threshold and not self._stop.is_set():
                    self._cond.wait(0.5)
            if self._stop.is_set():
                return
            try:
                messages = self._receive(self.options.batch_size)
            except ResourceNotFoundError:
                self._warn("queue %r does not exist yet; waiting for it", self.queue_name)
                messages = []
            except AzureError as exc:
                self._warn("queue %r: polling failed (%s); retrying", self.queue_name, type(exc).__name__)
                messages = []
            if messages:
                delay = 0.0
                for message in messages:
                    self._dispatch(message)
                continue
            delay = min(self.options.max_polling_interval_s, max(MIN_POLL_S, delay * 2))
            self._stop.wait(delay)

    def _receive(self, count: int) -> list[QueueMessage]:
        """One Get Messages call for up to `count` (the SDK's pager would otherwise fetch one
        message per request until it has `count`)."""
        pages = self.client.receive_messages(
            messages_per_page=count, max_messages=count, visibility_timeout=LEASE_S
        ).by_page()
        return list(next(pages, []))

    def _dispatch(self, message: QueueMessage) -> None:
        lease = _Lease(message)
        with self._cond:
            self._leases[message.id] = lease
        thread = threading.Thread(target=self._process, args=(lease,), daemon=True,
                                  name=f"devhost-queue-{self.spec.name}-msg")
        thread.start()

    # -- one message ----------------------------------------------------------------------
    def _process(self, lease: _Lease) -> None:
        message = lease.message
        try:
            count = int(message.dequeue_count or 1)
            if count > self.options.max_dequeue_count:
                # Delivered too often without settling (e.g. the host died mid-run).
                self._to_poison(lease, "dequeue count already past maxDequeueCount")
                return
            try:
                body = decode_body(message.content or "", self.options.message_encoding)
            except ValueError as exc:
                self._to_poison(lease, str(exc))
                return
            detail = f"queue {self.queue_name}, dequeue {count}"
            try:
                self.invoker.invoke(self.spec, *trigger_data(message, body), detail=detail)
            except Exception:
                if count >= self.options.max_dequeue_count:
                    self._to_poison(lease, f"failed {count} times (maxDequeueCount)")
                else:
                    self._release(lease)
                return
            self._settle(lease, delete=True)
        except AzureError as exc:
            log.warning("queue %r: settling message %s failed (%s); it will be redelivered",
                        self.queue_name, message.id, type(exc).__name__)
        finally:
            with self._cond:
                self._leases.pop(message.id, None)
                self._cond.notify_all()

    def _settle(self, lease: _Lease, *, delete: bool) -> None:
        with lease.lock:
            lease.done = True
            if delete:
                self.client.delete_message(lease.message.id, lease.message.pop_receipt)

    def _release(self, lease: _Lease) -> None:
        """Visible again after visibilityTimeout, for the retry."""
        with lease.lock:
            lease.done = True
            self.client.update_message(
                lease.message.id, lease.message.pop_receipt,
                visibility_timeout=int(round(self.options.visibility_timeout_s)),
            )

    def _to_poison(self, lease: _Lease, reason: str) -> None:
        poison_name = f"{self.queue_name}-poison"
        try:
            self.poison.create_queue()
        except ResourceExistsError:
            pass
        # Same stored text (still encoded), as the host copies it.
        self.poison.send_message(lease.message.content or "")
        self._settle(lease, delete=True)
        log.warning("queue %r: message %s moved to %r: %s", self.queue_name,
                    lease.message.id, poison_name, reason)

    # -- lease renewal --------------------------------------------------------------------
    def _renew_loop(self) -> None:
        # Ends with stop(): the host's drain (seconds) is far shorter than a lease.
        while not self._stop.wait(LEASE_S / 6):
            with self._cond:
                leases = list(self._leases.values())
            for lease in leases:
                if time.monotonic() - lease.taken_at < LEASE_S / 2:
                    continue
                with lease.lock:
                    if lease.done:
                        continue
                    try:
                        receipt = self.client.update_message(
                            lease.message.id, lease.message.pop_receipt, visibility_timeout=LEASE_S
                        )
                    except AzureError:
                        continue  # the next round tries again; worst case it is redelivered
                    lease.message.pop_receipt = receipt.pop_receipt
                    lease.taken_at = time.monotonic()
