"""The deferred index rows of `TableStore(defer_index=True)`: a small per-process buffer.

The cross-app time index and the apps registry live in other partitions than the app's, so they
cannot join intake's transaction. With `defer_index` their rows wait here until the worker's first
step writes them (its saves refresh the same rows and drop them from here), a cross-app read in
this process flushes them, or `flush` is called. Flushing is insert-only: a row that exists was
written by a later save, which knows better.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, TableTransactionError

MAX_PENDING = 2_000  # rows kept per process (older ones: the worker writes them anyway)
MAX_BATCH = 100  # operations per entity-group transaction

Key = tuple[str, str]  # (PartitionKey, RowKey)


class DeferredIndex:
    def __init__(self, table: TableClient, max_rows: int = MAX_PENDING) -> None:
        self.table = table
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._rows: OrderedDict[Key, dict[str, Any]] = OrderedDict()

    def __bool__(self) -> bool:
        return bool(self._rows)

    def add(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            for entity in rows:
                key = (entity["PartitionKey"], entity["RowKey"])
                self._rows[key] = entity
                self._rows.move_to_end(key)
            while len(self._rows) > self.max_rows:
                self._rows.popitem(last=False)

    def get(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            return self._rows.get(key)

    def written(self, *keys: Key) -> None:
        """These rows were just written by a save: nothing left to defer for them."""
        with self._lock:
            for key in keys:
                self._rows.pop(key, None)

    def flush(self) -> int:
        """Write the waiting rows, insert-only, batched per partition. Returns rows written."""
        with self._lock:
            rows, self._rows = list(self._rows.values()), OrderedDict()
        by_pk: dict[str, list[dict[str, Any]]] = {}
        for entity in rows:
            by_pk.setdefault(entity["PartitionKey"], []).append(entity)
        written = 0
        for group in by_pk.values():
            for start in range(0, len(group), MAX_BATCH):
                batch = group[start:start + MAX_BATCH]
                try:
                    self.table.submit_transaction([("create", e) for e in batch])
                    written += len(batch)
                    continue
                except TableTransactionError as exc:
                    if exc.status_code != 409:
                        raise
                for entity in batch:  # some exist already: the others one by one
                    try:
                        self.table.create_entity(entity)
                        written += 1
                    except ResourceExistsError:
                        pass
        return written
