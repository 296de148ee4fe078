"""Bulk-loading recorded deployments into a history table, for the benchmarks only.

Writes the store's own row shapes (`shared.adapters.tables_codec`) straight to its table: per
deployment its `d|` row and its event when one is given (rows "app"), its index row (rows
"index"), or all of them, upserted in per-partition transactions of up to 100 rows (feed it
deployments of few partitions at a time: one app's, one day's). No app state, no ETags: not a
production path.
"""

from __future__ import annotations

from typing import Any, Iterable

from azure.data.tables import UpdateMode

from shared.adapters.tables import TableStore
from shared.adapters.tables_codec import deployment_rows, event_entity
from shared.adapters.tables_index import MAX_BATCH
from shared.domain.model import Deployment, DeploymentEvent


def seed_rows(store: TableStore, deployments: Iterable[tuple[Deployment, DeploymentEvent | None]],
         rows: str = "all") -> int:
    """Returns the number of deployments written."""
    batches: dict[str, list[tuple]] = {}
    written = 0

    def add(entity: dict[str, Any]) -> None:
        batch = batches.setdefault(entity["PartitionKey"], [])
        batch.append(("upsert", entity, {"mode": UpdateMode.REPLACE}))
        if len(batch) >= MAX_BATCH:
            store.table.submit_transaction(batch)
            batches[entity["PartitionKey"]] = []

    for deployment, event in deployments:
        row, index_row = deployment_rows(deployment, 1 if event is not None else 0)
        if rows in ("all", "app"):
            add(row)
            if event is not None:
                add(event_entity(event, deployment.target.app, 1))
        if rows in ("all", "index"):
            add(index_row)
        written += 1
    for batch in batches.values():
        if batch:
            store.table.submit_transaction(batch)
    return written
