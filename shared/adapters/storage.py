"""Clients for the function app's Storage account (`AzureWebJobsStorage`): the history's Table
service and the rollout queue, built one way, from one credential.

A connection string (Azurite, or a key-based account) when `AzureWebJobsStorage` is set, else the
account's endpoints with DefaultAzureCredential, as the Functions host's identity-based connection
(`AzureWebJobsStorage__accountName`) does. Every client counts its requests (`RequestCounter`), so
adapters can report the round trips they spent and benchmarks can read them.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Hashable

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.storage.queue import BinaryBase64DecodePolicy, QueueClient, TextBase64EncodePolicy

from shared.settings import Settings

_credential_lock = threading.Lock()
_credential: Any = None
_created_lock = threading.Lock()
_created: set[Hashable] = set()


class RequestCounter:
    """`raw_request_hook` for the SDK clients: counts every request sent (retries included), in
    total and per thread (so a method can report the round trips it spent in `Page.round_trips`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self.total = 0

    def __call__(self, request: Any) -> None:
        with self._lock:
            self.total += 1
        self._local.n = getattr(self._local, "n", 0) + 1

    def mine(self) -> int:
        return getattr(self._local, "n", 0)


def storage_credential() -> Any:
    """One DefaultAzureCredential per process for every Storage client (it caches its tokens)."""
    global _credential
    with _credential_lock:
        if _credential is None:
            from azure.identity import DefaultAzureCredential

            _credential = DefaultAzureCredential()
        return _credential


def _account(settings: Settings) -> tuple[str | None, str | None]:
    if settings.storage_connection_string:
        return settings.storage_connection_string, None
    if settings.storage_account_name:
        return None, settings.storage_account_name
    raise ValueError("set AzureWebJobsStorage (connection string) or AzureWebJobsStorage__accountName")


def table_service(settings: Settings, counter: RequestCounter) -> TableServiceClient:
    connection_string, account = _account(settings)
    if connection_string:
        return table_service_from_connection_string(connection_string, counter)
    return TableServiceClient(endpoint=f"https://{account}.table.core.windows.net",
                              credential=storage_credential(), raw_request_hook=counter)


def table_service_from_connection_string(connection_string: str, counter: RequestCounter) -> TableServiceClient:
    return TableServiceClient.from_connection_string(connection_string, raw_request_hook=counter)


def _queue_encoding() -> dict[str, Any]:
    """Messages are base64 text on the wire: host.json sets `messageEncoding: base64` and the
    Functions queue trigger decodes base64. Fresh policies per client (they carry client config)."""
    return {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": BinaryBase64DecodePolicy()}


def queue_client(settings: Settings, queue_name: str, counter: RequestCounter) -> QueueClient:
    connection_string, account = _account(settings)
    if connection_string:
        return queue_client_from_connection_string(connection_string, queue_name, counter)
    return QueueClient(account_url=f"https://{account}.queue.core.windows.net", queue_name=queue_name,
                       credential=storage_credential(), raw_request_hook=counter, **_queue_encoding())


def queue_client_from_connection_string(connection_string: str, queue_name: str,
                                        counter: RequestCounter) -> QueueClient:
    return QueueClient.from_connection_string(connection_string, queue_name, raw_request_hook=counter,
                                              **_queue_encoding())


def create_once(key: Hashable, create: Callable[[], Any]) -> None:
    """Create a table or queue once per process (`create` may find it exists already)."""
    with _created_lock:
        if key in _created:
            return
        try:
            create()
        except ResourceExistsError:
            pass
        _created.add(key)


def forget_created(key: Hashable) -> None:
    """After deleting a table or queue: the next client creates it again."""
    with _created_lock:
        _created.discard(key)
