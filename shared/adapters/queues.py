"""The rollout queue on Azure Storage Queues (azure-storage-queue): RolloutQueue.

Messages are JSON, base64-encoded on the wire (the client is built by `shared.adapters.storage`).
Delays (waiting for a revision, canary bake time, back-off) are the message's initial visibility
timeout: waits are messages, not sleeps. Messages never expire (TTL -1):
a message that keeps failing goes to the `-poison` queue after maxDequeueCount, it is not lost.
"""

from __future__ import annotations

import json
from typing import Any

from azure.storage.queue import QueueClient

from shared import telemetry
from shared.adapters.storage import (
    RequestCounter, create_once, queue_client, queue_client_from_connection_string,
)
from shared.settings import Settings

# The queue the `rollout_step` function's trigger reads (function_app.py binds this name) and
# infra/main.bicep creates, with its `-poison` queue.
ROLLOUT_QUEUE = "acr-deploy-rollouts"
MAX_DELAY_S = 7 * 24 * 3600  # the service's visibility timeout limit
MAX_MESSAGE_BYTES = 48 * 1024  # 64 KiB per message, base64 inflates by 4/3


class StorageRolloutQueue:
    def __init__(self, client: QueueClient, counter: RequestCounter | None = None) -> None:
        self.client = client
        self.counter = counter or RequestCounter()
        create_once(client.url, client.create_queue)

    @property
    def round_trips(self) -> int:
        return self.counter.total

    @classmethod
    def from_connection_string(cls, connection_string: str, queue_name: str = ROLLOUT_QUEUE) -> "StorageRolloutQueue":
        counter = RequestCounter()
        return cls(queue_client_from_connection_string(connection_string, queue_name, counter), counter)

    @classmethod
    def from_settings(cls, settings: Settings, queue_name: str = ROLLOUT_QUEUE) -> "StorageRolloutQueue":
        """The function app's Storage account, as `shared.adapters.storage` connects to it."""
        counter = RequestCounter()
        return cls(queue_client(settings, queue_name, counter), counter)

    def send(self, message: dict[str, Any], delay_s: float = 0.0) -> None:
        # Every message carries the sender's trace context (when telemetry is on): the step it wakes
        # continues the push's trace, across delays and processes.
        body = json.dumps(telemetry.with_trace(dict(message)), separators=(",", ":"), default=str)
        if len(body.encode("utf-8")) > MAX_MESSAGE_BYTES:
            raise ValueError(f"queue message of {len(body)} characters exceeds the 64 KiB limit")
        delay = int(min(max(delay_s, 0.0), MAX_DELAY_S))
        self.client.send_message(body, visibility_timeout=delay or None, time_to_live=-1)

    # ---- tests and tools
    def receive(self, max_messages: int = 32, visibility_timeout: int = 30) -> list[tuple[dict[str, Any], Any]]:
        """Decoded messages with their SDK handles (delete with `delete(handle)`)."""
        found = []
        for msg in self.client.receive_messages(max_messages=max_messages,
                                                visibility_timeout=visibility_timeout):
            found.append((json.loads(msg.content.decode("utf-8")), msg))
            if len(found) >= max_messages:
                break
        return found

    def delete(self, handle: Any) -> None:
        self.client.delete_message(handle)
