"""One SDK client per subscription, built on first use and closed together: the ARM adapters' cache
(`containerapps.py`, `monitor.py`), so a process keeps its connection pools warm between invocations."""

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
