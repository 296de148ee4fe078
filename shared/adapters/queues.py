"""The rollout queue on Azure Storage Queues (azure-storage-queue): RolloutQueue.

Messages are JSON, base64-encoded, because host.json sets `messageEncoding: base64` and the Functions
queue trigger decodes base64. Delays (waiting for a revision, canary bake time, back-off) are the
message's initial visibility timeout: waits are messages, not sleeps. Messages never expire (TTL -1):
a message that keeps failing goes to the `-poison` queue after maxDequeueCount, it is not lost.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import BinaryBase64DecodePolicy, QueueClient, TextBase64EncodePolicy

from shared.adapters.tables import RequestCounter

ROLLOUT_QUEUE = "acr-deploy-rollouts"
MAX_DELAY_S = 7 * 24 * 3600  # the service's visibility timeout limit
MAX_MESSAGE_BYTES = 48 * 1024  # 64 KiB per message, base64 inflates by 4/3

_created_lock = threading.Lock()
_created: set[str] = set()


class StorageRolloutQueue:
    def __init__(self, client: QueueClient, counter: RequestCounter | None = None) -> None:
        self.client = client
        self.counter = counter or RequestCounter()
        self._ensure_queue()

    @property
    def round_trips(self) -> int:
        return self.counter.total

    @classmethod
    def from_connection_string(cls, connection_string: str, queue_name: str = ROLLOUT_QUEUE) -> "StorageRolloutQueue":
        counter = RequestCounter()
        client = QueueClient.from_connection_string(
            connection_string, queue_name, message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=BinaryBase64DecodePolicy(), raw_request_hook=counter)
        return cls(client, counter)

    @classmethod
    def from_settings(cls, settings: Any, queue_name: str = ROLLOUT_QUEUE) -> "StorageRolloutQueue":
        """Connection string (Azurite) when `AzureWebJobsStorage` is set, else the account's queue
        endpoint with DefaultAzureCredential, like the Functions host's identity-based connection."""
        if settings.storage_connection_string:
            return cls.from_connection_string(settings.storage_connection_string, queue_name)
        if settings.storage_account_name:
            from azure.identity import DefaultAzureCredential

            counter = RequestCounter()
            client = QueueClient(
                account_url=f"https://{settings.storage_account_name}.queue.core.windows.net",
                queue_name=queue_name, credential=DefaultAzureCredential(),
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=BinaryBase64DecodePolicy(), raw_request_hook=counter)
            return cls(client, counter)
        raise ValueError("set AzureWebJobsStorage (connection string) or AzureWebJobsStorage__accountName")

    def _ensure_queue(self) -> None:
        key = self.client.url
        with _created_lock:
            if key in _created:
                return
            try:
                self.client.create_queue()
            except ResourceExistsError:
                pass
            _created.add(key)

    def send(self, message: dict[str, Any], delay_s: float = 0.0) -> None:
        body = json.dumps(message, separators=(",", ":"), default=str)
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
