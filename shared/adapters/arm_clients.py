"""What the ARM adapters (`containerapps.py`, `monitor.py`) share: one SDK client per subscription, built on
first use and closed together (a process keeps its connection pools warm between invocations), and the
client options (endpoint, CA, short retries: a step has a budget, longer waits are the worker's)."""

from __future__ import annotations

import threading
from typing import Any, Callable

from shared.ports import PermanentAzureError


class SubscriptionClients:
    def __init__(self, factory: Callable[[str], Any], default_subscription: str | None = None) -> None:
        self._factory = factory
        self.default_subscription = default_subscription
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, subscription_id: str | None) -> Any:
        sub = subscription_id or self.default_subscription
        if not sub:
            raise PermanentAzureError("no subscription id (set ACR_DEPLOY_SUBSCRIPTION_ID)", 400)
        with self._lock:
            if sub not in self._clients:
                self._clients[sub] = self._factory(sub)
            return self._clients[sub]

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


def arm_client_options(settings: Any, **extra: Any) -> dict[str, Any]:
    """Keyword arguments of an azure-mgmt-* client for the configured ARM endpoint (`extra`: e.g. a
    `raw_request_hook`)."""
    return dict(base_url=settings.arm_endpoint, connection_verify=settings.arm_ca_bundle or True,
                retry_total=3, retry_backoff_factor=0.2, retry_backoff_max=2, connection_timeout=10,
                read_timeout=30, **extra)
