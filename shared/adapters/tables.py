"""The deployment history in Azure Table Storage (azure-data-tables): DeploymentRepository + HistoryReader.

Key design. One table, `<prefix>history`, partitioned so that every request touches a SMALL
partition (Table storage scales by partition, and Azurite's cost per point read / transaction grows
with the partition touched) and every write that must be atomic stays inside one partition:

  PartitionKey "a|<app>"  one per Container App name (lowercased); the source of truth
    s|<sub|rg|app>              app state (Target.key): what is live and since when, coordination  (a)
    d|<inverted id>             a deployment of an app of that name, newest first                   (b, c)
    e|<inverted id>|<seq>       its story, one row per state change, in order                      (c)
  PartitionKey "t|<inverted yyyymmdd>"  cross-app time index, one partition per UTC day
    <inverted id>               copy of the deployment (doc + filterable summary)                  (d, c)
  PartitionKey "apps"  apps registry
    <sub|rg|app>                copy of the app state, with the state row's etag                   (a)
  PartitionKey "x|<inverted yyyymmdd>"  dismissed events, one partition per UTC day
    <inverted time>|<key>       ignored / rejected / skipped, newest first (idempotent key)        (e)

Ids start with the UTC time `YYYYmmddHHMMSS-`; "inverted" replaces each of those digits d by 9-d so
newer sorts first, and the day partitions carry the inverted day so that partition order is newest
first too. Questions: (a) `list_apps` = one query of "apps"; (b) last N of an app = one RowKey range
query in its partition, transferring only what it returns; (c) one story = point read of the
deployment + one range query of its events; (d) a time window across apps = ONE query over the
range of day partitions it spans (RowKeys carry the full time, so the same RowKey bounds apply in
each); (e) the same over "x|" days. Server-side filters (environment/status/repository) ride along
as `parameters=`; continuation tokens are opaque (base64 of the last RowKey).

Writes. `create_deployment` (intake: state If-Match/insert + deployment + first event) and
`save_deployment` (deployment If-Match + appended events) are ONE transaction each in the app
partition. The time index and the apps registry are other partitions, so they cannot join that
transaction; they are refreshed by idempotent upserts right after `save_deployment` /
`save_app_state` (the rollout worker's saves), and after `create_deployment` unless the store was
built with `defer_index=True` (the function app: intake then stays at 3 round trips per accepted
event: read state, enqueue, transaction). Deferred rows wait in a small per-process buffer: the
worker's first step (a `save_app_state` claim and a `save_deployment`, within moments of the
enqueue) writes them, a cross-app read in the same process flushes them first (insert-only, so a
late flush never overwrites what a worker wrote since), and `flush_index()` does it on demand.
So: per-app history (app state, `list_deployments(app=...)`, `get_deployment(id, app=...)`,
stories) is immediate; the cross-app index and the apps registry are eventually consistent, a new
deployment appearing there once its rollout has started.

`get_deployment(id)` without the app: point read of the index row (its day comes from the id) to
learn the app, then the authoritative row (2 round trips); 1 with the `app` hint, or when this
process has seen the deployment. A worker's first step may not find a deployment that way (not
indexed yet): it then takes the start message's recovery path, `ensure_recorded`, which passes the
app and finds the record; callers that know the app should pass it.

Concurrency: app state rows use ETags (If-Match / insert-only); a deployment save with an etag is
If-Match on its `d|` row inside the transaction that appends its events, so two writers cannot both
append (event seq numbers cannot repeat). A deployment's JSON (deployment_to_dict) is stored in
`doc` chunks (a string property holds 64 KiB); long texts are truncated first.

Modules: `tables_keys` (the key scheme above, continuation tokens, the query filter),
`tables_codec` (entities <-> domain objects, chunking, truncation), `tables_index` (the deferred
index rows), `storage` (the Table service client), this one (the store).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError,
)
from azure.data.tables import TableServiceClient, TableTransactionError, UpdateMode

from shared.adapters.storage import (
    RequestCounter, create_once, forget_created, table_service, table_service_from_connection_string,
)
from shared.adapters.tables_codec import (
    deployment_from_entity, deployment_rows, event_entity, event_from_entity, ignored_entity,
    ignored_from_entity, registry_entity, registry_from_entity, state_entity, state_from_entity,
)
from shared.adapters.tables_index import MAX_BATCH, DeferredIndex
from shared.adapters.tables_keys import (
    APPS_PK, IGNORED_DAY, INDEX_DAY, app_pk, day_range, decode_continuation, deployment_filter, deployment_rk,
    encode_continuation, event_prefix, index_key, inverted_id, older_days, state_rk, time_bounds, valid_key,
)
from shared.domain.model import AppState, Deployment, DeploymentEvent, IgnoredEvent, Target
from shared.ports import ConcurrencyError, DeploymentQuery, Page
from shared.settings import Settings

# Re-exported: tests and benchmarks import the key helpers from here.
__all__ = ["TableStore", "decode_continuation", "encode_continuation", "inverted_id"]

log = logging.getLogger("acr_deploy.tables")

MAX_PAGE = 1000  # Table service page size limit
MAX_PAGES = 20  # per call: bounded even when server-side filters thin pages out
MAX_SEEN = 4_096  # deployments whose (app, etag, event count) this process remembers

def _put(entity: dict[str, Any], etag: str | None) -> tuple:
    """Transaction operation: insert-only without an etag, else replace If-Match that etag."""
    if etag is None:
        return ("create", entity)
    return ("update", entity, {"mode": UpdateMode.REPLACE, "etag": etag,
                               "match_condition": MatchConditions.IfNotModified})


def _upsert(entity: dict[str, Any]) -> tuple:
    return ("upsert", entity, {"mode": UpdateMode.REPLACE})


def _next_token(entities: list[Any], more: bool) -> str | None:
    return encode_continuation(entities[-1]["RowKey"]) if more and entities else None


class TableStore:
    """DeploymentRepository + HistoryReader on one Table (see the module docstring for keys)."""

    def __init__(self, service: TableServiceClient, table_prefix: str = "acrdeploy",
                 counter: "RequestCounter | None" = None, *, defer_index: bool = False) -> None:
        self.service = service
        self.table_name = f"{table_prefix}history"
        self.table = service.get_table_client(self.table_name)
        self.defer_index = defer_index
        self._lock = threading.Lock()
        self.counter = counter or RequestCounter()
        self.entities_read = 0  # entities transferred by queries and reads (benchmarks read it)
        # id -> (app, etag, event_count) of the last `d|` row we saw: saves with that etag need no
        # re-read, and reads by id need no index lookup.
        self._seen: OrderedDict[str, tuple[str, str | None, int]] = OrderedDict()
        self.index = DeferredIndex(self.table)  # used with defer_index
        create_once((service.url, self.table_name), lambda: service.create_table(self.table_name))

    @property
    def round_trips(self) -> int:
        """Every HTTP request sent, retries included (benchmarks read it)."""
        return self.counter.total

    @classmethod
    def from_connection_string(cls, connection_string: str, table_prefix: str = "acrdeploy", *,
                               defer_index: bool = False) -> "TableStore":
        counter = RequestCounter()
        return cls(table_service_from_connection_string(connection_string, counter), table_prefix, counter,
                   defer_index=defer_index)

    @classmethod
    def from_settings(cls, settings: Settings, *, defer_index: bool = False) -> "TableStore":
        """The function app's Storage account, as `shared.adapters.storage` connects to it."""
        counter = RequestCounter()
        return cls(table_service(settings, counter), settings.table_prefix, counter, defer_index=defer_index)

    def _trips(self) -> int:
        return self.counter.mine()

    def _remember(self, deployment_id: str, app: str, etag: str | None, count: int) -> None:
        with self._lock:
            self._seen[deployment_id] = (app.lower(), etag, count)
            self._seen.move_to_end(deployment_id)
            while len(self._seen) > MAX_SEEN:
                self._seen.popitem(last=False)

    def _read(self, n: int) -> None:
        with self._lock:
            self.entities_read += n

    def _submit(self, operations: list[tuple]) -> list[Any]:
        try:
            return self.table.submit_transaction(operations)
        except TableTransactionError as exc:
            code = getattr(exc.error_code, "value", exc.error_code)
            if code != "TableNotFound" and exc.status_code in (404, 409, 412):
                raise ConcurrencyError(f"conflicting write ({code})") from exc
            raise

    def _query(self, query_filter: str, parameters: dict[str, Any], limit: int,
               select: list[str] | None = None) -> tuple[list[Any], bool]:
        """Up to `limit` entities in (PartitionKey, RowKey) order, following service continuations
        (bounded). Returns (entities, more) where `more` means the service has further rows."""
        found: list[Any] = []
        pages = self.table.query_entities(
            query_filter, parameters=parameters, results_per_page=min(limit, MAX_PAGE), select=select,
        ).by_page()
        more = False
        for n, page in enumerate(pages):
            found.extend(page)
            if len(found) >= limit:
                more = bool(pages.continuation_token) or len(found) > limit
                break
            if not pages.continuation_token or n + 1 >= MAX_PAGES:
                more = bool(pages.continuation_token)
                break
        self._read(len(found))
        return found[:limit], more

    def _get(self, pk: str, row_key: str) -> Any | None:
        if not valid_key(pk) or not valid_key(row_key):
            return None
        try:
            entity = self.table.get_entity(pk, row_key)
        except ResourceNotFoundError:
            return None
        self._read(1)
        return entity

    # ---- the cross-app index and the apps registry (other partitions: written after the fact)
    def _index_now(self, rows: list[dict[str, Any]]) -> None:
        """Idempotent upserts (never conditional: the app partition is the truth, these copy it).
        A failure here (after the SDK's own retries) is logged, not raised: the write that matters
        is committed, and raising would make the caller redo it; the next save refreshes the copy."""
        for entity in rows:
            try:
                self.table.upsert_entity(entity, mode=UpdateMode.REPLACE)
            except AzureError as exc:
                log.warning("index row %s/%s not refreshed: %s", entity["PartitionKey"],
                            entity["RowKey"], type(exc).__name__)

    def flush_index(self) -> int:
        """Write this process's deferred index/registry rows now (see `tables_index`)."""
        return self.index.flush()

    # ---- DeploymentRepository
    def get_app_state(self, target: Target) -> AppState | None:
        entity = self._get(app_pk(target.app), state_rk(target.key))
        return state_from_entity(entity) if entity is not None else None

    def create_deployment(self, deployment: Deployment, event: DeploymentEvent, state: AppState) -> AppState:
        row, index_row = deployment_rows(deployment, 1)
        ops = [("create", row),
               _upsert(event_entity(event, deployment.target.app, 1)),
               _put(state_entity(state), state.etag)]
        results = self._submit(ops)
        self._remember(deployment.id, deployment.target.app, results[0].get("etag"), 1)
        index_row["row_etag"] = results[0].get("etag") or ""
        stored = replace(state, etag=results[2].get("etag"))
        follow = [index_row, registry_entity(stored, stored.etag)]
        if self.defer_index:
            self.index.add(follow)
        else:
            self._index_now(follow)
        return stored

    def save_app_state(self, state: AppState) -> AppState:
        op = _put(state_entity(state), state.etag)
        try:
            if op[0] == "create":
                meta = self.table.create_entity(op[1])
            else:
                meta = self.table.update_entity(op[1], **op[2])
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyError(f"app state of {state.target.app} changed") from exc
        stored = replace(state, etag=meta.get("etag"))
        self._index_now([registry_entity(stored, stored.etag)])
        self.index.written((APPS_PK, state.target.key))
        return stored

    def save_deployment(self, deployment: Deployment, *events: DeploymentEvent) -> Deployment:
        if len(events) > MAX_BATCH - 1:  # a transaction holds 100 operations (row + events)
            raise ValueError(f"at most {MAX_BATCH - 1} events per save")
        if deployment.etag is not None:
            saved = self._save(deployment, events, deployment.etag)
        else:
            # Unconditional save: condition on what we read, so concurrent appends never share a seq.
            for _ in range(5):
                try:
                    saved = self._save(deployment, events, None)
                    break
                except ConcurrencyError:
                    continue
            else:
                raise ConcurrencyError(f"deployment {deployment.id} kept changing")
        return saved

    def _save(self, deployment: Deployment, events: tuple[DeploymentEvent, ...], etag: str | None) -> Deployment:
        app = deployment.target.app
        count = None
        if etag is not None:
            with self._lock:
                cached = self._seen.get(deployment.id)
            if cached and cached[1] == etag and cached[0] == app.lower():
                count, condition = cached[2], etag
        if count is None:  # unknown: read the row for its event count (and etag when unconditional)
            current = self._get(app_pk(app), deployment_rk(deployment.id))
            condition = current.metadata.get("etag") if current is not None else None
            if etag is not None and condition != etag:
                raise ConcurrencyError(f"deployment {deployment.id} changed")
            count = int(current.get("event_count", 0)) if current is not None else 0
        total = count + len(events)
        row, index_row = deployment_rows(deployment, total)
        ops = [_put(row, condition)] + [_upsert(event_entity(e, app, count + n))
                                        for n, e in enumerate(events, start=1)]
        results = self._submit(ops)
        new_etag = results[0].get("etag")
        self._remember(deployment.id, app, new_etag, total)
        index_row["row_etag"] = new_etag or ""
        self._index_now([index_row])
        self.index.written((index_row["PartitionKey"], index_row["RowKey"]))
        return replace(deployment, etag=new_etag)

    def _app_of(self, deployment_id: str) -> str | None:
        """The app partition of a deployment: remembered, deferred, or from its index row (1 trip)."""
        with self._lock:
            seen = self._seen.get(deployment_id)
            if seen:
                return seen[0]
        pending = self.index.get(index_key(deployment_id))
        if pending:
            return pending["app"]
        entity = self._get(*index_key(deployment_id))
        return entity.get("app") if entity is not None else None

    def get_deployment(self, deployment_id: str, app: str | None = None) -> Deployment | None:
        """The authoritative row. `app` (the Container App name, when the caller knows it) makes it
        one point read and finds deployments the cross-app index does not list yet."""
        for partition_app in ([app] if app else []) + [None]:
            name = partition_app or self._app_of(deployment_id)
            if not name:
                return None
            entity = self._get(app_pk(name), deployment_rk(deployment_id))
            if entity is not None:
                deployment = deployment_from_entity(entity)
                self._remember(deployment_id, name, deployment.etag, int(entity.get("event_count", 0)))
                return deployment
            if partition_app is None:
                return None
            with self._lock:  # a wrong hint: forget it, ask the index
                self._seen.pop(deployment_id, None)
        return None

    def record_ignored(self, item: IgnoredEvent) -> None:
        self.table.upsert_entity(ignored_entity(item), mode=UpdateMode.REPLACE)

    # ---- HistoryReader
    def list_deployments(self, query: DeploymentQuery) -> Page:
        before = self._trips()
        if not query.app:
            self._flush_if_pending()
        found = deployment_filter(query)
        if found is None:
            return Page([], None, round_trips=0)
        limit = max(1, min(int(query.limit), MAX_PAGE))
        entities, more = self._query(*found, limit)
        items = []
        for entity in entities:
            deployment = deployment_from_entity(entity)
            if query.app or entity.get("row_etag"):  # etag + event count of the `d|` row
                self._remember(deployment.id, deployment.target.app, deployment.etag,
                               int(entity.get("event_count", 0)))
            items.append(deployment)
        return Page(items, _next_token(entities, more), round_trips=self._trips() - before)

    def list_events(self, deployment_id: str, app: str | None = None) -> list[DeploymentEvent]:
        name = app or self._app_of(deployment_id)
        if not name or not valid_key(app_pk(name)):
            return []
        prefix = event_prefix(deployment_id)
        entities, _ = self._query("PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi",
                                  {"pk": app_pk(name), "lo": prefix, "hi": prefix + "~"}, 5_000)
        return sorted((event_from_entity(e) for e in entities), key=lambda e: e.seq)

    def list_apps(self) -> list[AppState]:
        self._flush_if_pending()
        entities, _ = self._query("PartitionKey eq @pk", {"pk": APPS_PK}, 5_000)
        return [registry_from_entity(e) for e in entities]

    def list_ignored(self, since: datetime, until: datetime, limit: int = 100) -> Page:
        before = self._trips()
        lo, hi = time_bounds(since, until)
        first, last = day_range(IGNORED_DAY, lo, hi)
        entities, more = self._query(
            "PartitionKey ge @pklo and PartitionKey le @pkhi and RowKey ge @lo and RowKey lt @hi",
            {"pklo": first, "pkhi": last, "lo": lo, "hi": hi}, max(1, min(limit, MAX_PAGE)))
        items = [ignored_from_entity(e) for e in entities]
        return Page(items, _next_token(entities, more), round_trips=self._trips() - before)

    # ---- RecordRetention
    def purge_records(self, before: datetime, limit: int = 1000) -> int:
        """Delete up to `limit` rows of the record-only day partitions (`x|` dismissed events, `t|`
        cross-app index) of UTC days before `before`'s day; returns how many. App partitions are
        never touched, and index rows of deployments the apps registry points to stay listable."""
        registry = self.list_apps()
        kept = {inverted_id(i) for s in registry for i in (s.live_deployment_id, s.active_deployment_id,
                                                           s.pending_deployment_id, s.last_deployment_id) if i}
        deleted = 0
        for prefix in (IGNORED_DAY, INDEX_DAY):
            if deleted >= limit:
                break
            lo, hi = older_days(prefix, before)
            entities, _ = self._query("PartitionKey gt @lo and PartitionKey lt @hi", {"lo": lo, "hi": hi},
                                      limit - deleted, select=["PartitionKey", "RowKey"])
            doomed = [e for e in entities if not (prefix == INDEX_DAY and e["RowKey"] in kept)]
            for pk in sorted({e["PartitionKey"] for e in doomed}):  # a transaction is one partition
                rows = [e for e in doomed if e["PartitionKey"] == pk]
                for start in range(0, len(rows), MAX_BATCH):
                    deleted += self._delete_rows(rows[start:start + MAX_BATCH])
        return deleted

    def _delete_rows(self, rows: list[Any]) -> int:
        keys = [{"PartitionKey": e["PartitionKey"], "RowKey": e["RowKey"]} for e in rows]
        try:
            self.table.submit_transaction([("delete", k) for k in keys])
        except TableTransactionError:  # another purge got some first: one by one (404s are no-ops)
            for k in keys:
                self.table.delete_entity(k["PartitionKey"], k["RowKey"])
        return len(keys)

    def _flush_if_pending(self) -> None:
        """Read-your-writes in this process for the cross-app views (see `defer_index`)."""
        if self.index:
            self.index.flush()

    # ---- maintenance (tests, sandbox, benchmarks)
    def delete_table(self) -> None:
        self.service.delete_table(self.table_name)
        forget_created((self.service.url, self.table_name))
