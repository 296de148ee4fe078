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
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError,
)
from azure.data.tables import TableServiceClient, TableTransactionError, UpdateMode

from shared.domain.model import (
    AppState, Deployment, DeploymentEvent, IgnoredEvent, Phase, TERMINAL_PHASES, Target,
    deployment_from_dict, deployment_to_dict,
)
from shared.ports import ConcurrencyError, DeploymentQuery, Page

log = logging.getLogger("acr_deploy.tables")

APPS_PK = "apps"
MAX_PAGE = 1000  # Table service page size limit
MAX_PAGES = 20  # per call: bounded even when server-side filters thin pages out
MAX_BATCH = 100  # operations per entity-group transaction
MAX_PENDING = 2_000  # deferred index rows kept per process (older ones: the worker writes them)
CHUNK = 30_000  # characters per string property (64 KiB as UTF-16)
MAX_CHUNKS = 8
MAX_MESSAGE = 4_000
MAX_EVENT_DATA = 16_000
_ID_TIME = re.compile(r"(\d{14})(.*)", re.DOTALL)
_BAD_KEY = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")  # not allowed in PartitionKey/RowKey

_created_lock = threading.Lock()
_created_tables: set[tuple[str, str]] = set()


# --------------------------------------------------------------------------- keys


def _invert_digits(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "9876543210"))


def inverted_id(deployment_id: str) -> str:
    """Newest first. Ids without the time prefix (not produced by this code) sort after all others."""
    match = _ID_TIME.fullmatch(deployment_id)
    if not match:
        return "~" + deployment_id
    return _invert_digits(match.group(1)) + match.group(2)


def _inverted_time(at: datetime) -> str:
    return _invert_digits(f"{at.astimezone(timezone.utc):%Y%m%d%H%M%S}")


def _ceil_second(at: datetime) -> datetime:
    at = at.astimezone(timezone.utc)
    return at if at.microsecond == 0 else at.replace(microsecond=0) + timedelta(seconds=1)


def _app_pk(app: str) -> str:
    return "a|" + app.lower()


def _valid_key(text: str) -> bool:
    return not _BAD_KEY.search(text) and len(text) <= 255


def _day_pk(prefix: str, inverted: str) -> str:
    """The day partition of a row whose RowKey starts with an inverted time (or '~': no time)."""
    return prefix + ("~" if inverted.startswith("~") else inverted[:8])


def _index_pk(deployment_id: str) -> str:
    return _day_pk("t|", inverted_id(deployment_id))


def _bounds(since: datetime | None, until: datetime | None) -> tuple[str, str]:
    """Bounds [lo, hi) on inverted-time keys for since <= time < until (one-second resolution,
    the resolution of the ids). '-' and '|' (after the time) sort below '~'."""
    lo = _inverted_time(_ceil_second(until)) + "~" if until else ""
    hi = _inverted_time(since.replace(microsecond=0)) + "~" if since else "~~~~"
    return lo, hi


def _day_range(prefix: str, lo: str, hi: str) -> tuple[str, str]:
    """Inclusive PartitionKey bounds of the day partitions that can hold RowKeys in [lo, hi)."""
    first = prefix + (lo[:8] if lo and not lo.startswith("~") else "")
    last = prefix + (hi[:8] if not hi.startswith("~") else "~")
    return first, last


# --------------------------------------------------------------------------- (de)serialisation


def _chunks(text: str) -> dict[str, str]:
    return {f"doc{i}": text[i * CHUNK:(i + 1) * CHUNK] for i in range((len(text) + CHUNK - 1) // CHUNK)}


def _join(entity: dict[str, Any]) -> str:
    return "".join(entity.get(f"doc{i}", "") for i in range(MAX_CHUNKS))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fit_doc(doc: dict[str, Any]) -> str:
    """JSON within MAX_CHUNKS properties: long texts (smoke excerpts, reasons) are truncated first."""
    text = json.dumps(doc, separators=(",", ":"), default=str)
    if len(text) <= CHUNK * MAX_CHUNKS:
        return text
    doc = dict(doc, reason=_clip(doc.get("reason", ""), 2_000))
    doc["data"] = {k: (_clip(v, 1_000) if isinstance(v, str) else v) for k, v in doc["data"].items()}
    text = json.dumps(doc, separators=(",", ":"), default=str)
    if len(text) > CHUNK * MAX_CHUNKS:
        doc["data"] = {"truncated": True}
        text = json.dumps(doc, separators=(",", ":"), default=str)
    return text


def _deployment_entity(d: Deployment, pk: str, row_key: str, event_count: int,
                       doc: str | None = None) -> dict[str, Any]:
    """The `d|` row (pk = app partition) or its index copy (pk = day partition): the same
    summary fields, so the same server-side filters work on both."""
    entity = {
        "PartitionKey": pk, "RowKey": row_key,
        "id": d.id, "app": d.target.app.lower(), "target": d.target.key,
        "environment": d.environment, "phase": d.phase.value, "repository": d.repository,
        "tag": d.tag, "digest": d.digest, "kind": d.kind.value,
        "created_at": d.created_at.astimezone(timezone.utc).isoformat(), "event_count": event_count,
    }
    entity.update(_chunks(doc if doc is not None else _fit_doc(deployment_to_dict(d))))
    return entity


def _rows(d: Deployment, event_count: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(app partition row, index row) of one deployment, serialised once."""
    inv = inverted_id(d.id)
    doc = _fit_doc(deployment_to_dict(d))
    return (_deployment_entity(d, _app_pk(d.target.app), "d|" + inv, event_count, doc),
            _deployment_entity(d, _index_pk(d.id), inv, event_count, doc))


def _deployment_from_entity(entity: Any) -> Deployment:
    """From a `d|` row, or from an index copy: then the etag is the one of the `d|` row it copied
    (`row_etag`), so a deployment listed across apps can be saved conditionally, and fails with
    ConcurrencyError if the copy was behind."""
    etag = entity.get("row_etag") or entity.metadata.get("etag")
    return deployment_from_dict(json.loads(_join(entity)), etag=etag)


def _state_to_dict(s: AppState) -> dict[str, Any]:
    def iso(v: datetime | None) -> str | None:
        return v.astimezone(timezone.utc).isoformat() if v else None

    return {
        "subscription_id": s.target.subscription_id, "resource_group": s.target.resource_group,
        "app": s.target.app, "container": s.target.container,
        "live_deployment_id": s.live_deployment_id, "live_revision": s.live_revision,
        "live_image": s.live_image, "live_digest": s.live_digest, "live_tag": s.live_tag,
        "live_since": iso(s.live_since), "environment": s.environment,
        "active_deployment_id": s.active_deployment_id, "pending_deployment_id": s.pending_deployment_id,
        "inflight_digests": list(s.inflight_digests), "latest_version_key": s.latest_version_key,
        "last_deployment_id": s.last_deployment_id, "last_phase": s.last_phase,
        "updated_at": iso(s.updated_at),
    }


def _state_from_dict(data: dict[str, Any], etag: str | None) -> AppState:
    def dt(v: str | None) -> datetime | None:
        return datetime.fromisoformat(v) if v else None

    return AppState(
        target=Target(data["subscription_id"], data["resource_group"], data["app"], data.get("container")),
        live_deployment_id=data.get("live_deployment_id", ""), live_revision=data.get("live_revision", ""),
        live_image=data.get("live_image", ""), live_digest=data.get("live_digest", ""),
        live_tag=data.get("live_tag", ""), live_since=dt(data.get("live_since")),
        environment=data.get("environment", ""), active_deployment_id=data.get("active_deployment_id", ""),
        pending_deployment_id=data.get("pending_deployment_id", ""),
        inflight_digests=tuple(data.get("inflight_digests") or ()),
        latest_version_key=data.get("latest_version_key", ""),
        last_deployment_id=data.get("last_deployment_id", ""), last_phase=data.get("last_phase", ""),
        updated_at=dt(data.get("updated_at")), etag=etag,
    )


def _state_entity(s: AppState) -> dict[str, Any]:
    return {"PartitionKey": _app_pk(s.target.app), "RowKey": "s|" + s.target.key,
            "app": s.target.app.lower(), "environment": s.environment,
            **_chunks(json.dumps(_state_to_dict(s), separators=(",", ":")))}


def _registry_entity(s: AppState, state_etag: str | None) -> dict[str, Any]:
    """The apps registry copy; `state_etag` is the etag of the state row it copies, so a state
    read from `list_apps` can be saved conditionally like one from `get_app_state`."""
    entity = _state_entity(s)
    entity.update(PartitionKey=APPS_PK, RowKey=s.target.key, state_etag=state_etag or "")
    return entity


def _state_from_entity(entity: Any) -> AppState:
    return _state_from_dict(json.loads(_join(entity)), entity.metadata.get("etag"))


def _registry_from_entity(entity: Any) -> AppState:
    return _state_from_dict(json.loads(_join(entity)), entity.get("state_etag") or None)


def _event_entity(e: DeploymentEvent, app: str, seq: int) -> dict[str, Any]:
    data = json.dumps(e.data, separators=(",", ":"), default=str)
    if len(data) > MAX_EVENT_DATA:
        data = json.dumps({k: (_clip(v, 500) if isinstance(v, str) else v) for k, v in e.data.items()},
                          default=str)
        if len(data) > MAX_EVENT_DATA:
            data = json.dumps({"truncated": True})
    return {
        "PartitionKey": _app_pk(app), "RowKey": f"e|{inverted_id(e.deployment_id)}|{seq:06d}",
        "deployment_id": e.deployment_id, "seq": seq, "at": e.at.astimezone(timezone.utc).isoformat(),
        "phase": e.phase.value, "message": _clip(e.message, MAX_MESSAGE), "data": data,
    }


def _event_from_entity(entity: Any) -> DeploymentEvent:
    return DeploymentEvent(
        deployment_id=entity["deployment_id"], at=datetime.fromisoformat(entity["at"]),
        phase=Phase(entity["phase"]), message=entity.get("message", ""),
        data=json.loads(entity.get("data") or "{}"), seq=int(entity["seq"]),
    )


def _ignored_entity(item: IgnoredEvent) -> dict[str, Any]:
    row_key = f"{_inverted_time(item.at)}|{item.key}"
    return {
        "PartitionKey": _day_pk("x|", row_key), "RowKey": row_key,
        "at": item.at.astimezone(timezone.utc).isoformat(), "outcome": item.outcome,
        "reason": _clip(item.reason, MAX_MESSAGE), "event_id": _clip(item.event_id, 512),
        "event_type": _clip(item.event_type, 256), "registry": _clip(item.registry, 256),
        "repository": _clip(item.repository, 512), "tag": _clip(item.tag, 256),
        "digest": _clip(item.digest, 256), "app": _clip(item.app, 256),
    }


def _ignored_from_entity(entity: Any) -> IgnoredEvent:
    return IgnoredEvent(
        at=datetime.fromisoformat(entity["at"]), outcome=entity["outcome"], reason=entity["reason"],
        event_id=entity.get("event_id", ""), event_type=entity.get("event_type", ""),
        registry=entity.get("registry", ""), repository=entity.get("repository", ""),
        tag=entity.get("tag", ""), digest=entity.get("digest", ""), app=entity.get("app", ""),
    )


def encode_continuation(row_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": row_key}).encode()).decode().rstrip("=")


def decode_continuation(token: str) -> str:
    """The RowKey to continue after. ValueError when the token is not one we issued."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        after = json.loads(raw)["after"]
    except Exception as exc:  # noqa: BLE001 - any decoding failure means "not our token"
        raise ValueError("continuation token is not valid") from exc
    if not isinstance(after, str) or not after or len(after) > 1024:
        raise ValueError("continuation token is not valid")
    return after


# --------------------------------------------------------------------------- the store


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
        # Deferred index/registry rows (defer_index): id or target key -> entity, insert-only.
        self._pending: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._ensure_table()

    @property
    def round_trips(self) -> int:
        """Every HTTP request sent, retries included (benchmarks read it)."""
        return self.counter.total

    @classmethod
    def from_connection_string(cls, connection_string: str, table_prefix: str = "acrdeploy", *,
                               defer_index: bool = False) -> "TableStore":
        counter = RequestCounter()
        service = TableServiceClient.from_connection_string(connection_string, raw_request_hook=counter)
        return cls(service, table_prefix, counter, defer_index=defer_index)

    @classmethod
    def from_settings(cls, settings: Any, *, defer_index: bool = False) -> "TableStore":
        """Azurite/connection string when `AzureWebJobsStorage` is set, else the account's Table
        endpoint with DefaultAzureCredential (managed identity in Azure)."""
        if settings.storage_connection_string:
            return cls.from_connection_string(settings.storage_connection_string, settings.table_prefix,
                                              defer_index=defer_index)
        if settings.storage_account_name:
            from azure.identity import DefaultAzureCredential

            counter = RequestCounter()
            service = TableServiceClient(
                endpoint=f"https://{settings.storage_account_name}.table.core.windows.net",
                credential=DefaultAzureCredential(), raw_request_hook=counter)
            return cls(service, settings.table_prefix, counter, defer_index=defer_index)
        raise ValueError("set AzureWebJobsStorage (connection string) or AzureWebJobsStorage__accountName")

    def _trips(self) -> int:
        return self.counter.mine()

    def _ensure_table(self) -> None:
        key = (self.service.url, self.table_name)
        with _created_lock:
            if key in _created_tables:
                return
            try:
                self.service.create_table(self.table_name)
            except ResourceExistsError:
                pass
            _created_tables.add(key)

    def _remember(self, deployment_id: str, app: str, etag: str | None, count: int) -> None:
        with self._lock:
            self._seen[deployment_id] = (app.lower(), etag, count)
            self._seen.move_to_end(deployment_id)
            while len(self._seen) > 4096:
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
        if not _valid_key(pk) or not _valid_key(row_key):
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

    def _index_later(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            for entity in rows:
                key = (entity["PartitionKey"], entity["RowKey"])
                self._pending[key] = entity
                self._pending.move_to_end(key)
            while len(self._pending) > MAX_PENDING:  # the worker's first step writes them anyway
                self._pending.popitem(last=False)

    def _written(self, *keys: tuple[str, str]) -> None:
        with self._lock:
            for key in keys:
                self._pending.pop(key, None)

    def flush_index(self) -> int:
        """Write the deferred index/registry rows of this process: insert-only (a row that exists
        was written by a later save, which knows better), batched per partition. Returns rows written."""
        with self._lock:
            rows, self._pending = list(self._pending.values()), OrderedDict()
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

    # ---- DeploymentRepository
    def get_app_state(self, target: Target) -> AppState | None:
        entity = self._get(_app_pk(target.app), "s|" + target.key)
        return _state_from_entity(entity) if entity is not None else None

    def _state_op(self, state: AppState) -> tuple:
        entity = _state_entity(state)
        if state.etag is None:
            return ("create", entity)
        return ("update", entity, {"mode": UpdateMode.REPLACE, "etag": state.etag,
                                   "match_condition": MatchConditions.IfNotModified})

    def create_deployment(self, deployment: Deployment, event: DeploymentEvent, state: AppState) -> AppState:
        row, index_row = _rows(deployment, 1)
        ops = [("create", row),
               ("upsert", _event_entity(event, deployment.target.app, 1), {"mode": UpdateMode.REPLACE}),
               self._state_op(state)]
        results = self._submit(ops)
        self._remember(deployment.id, deployment.target.app, results[0].get("etag"), 1)
        index_row["row_etag"] = results[0].get("etag") or ""
        stored = replace(state, etag=results[2].get("etag"))
        follow = [index_row, _registry_entity(stored, stored.etag)]
        if self.defer_index:
            self._index_later(follow)
        else:
            self._index_now(follow)
        return stored

    def save_app_state(self, state: AppState) -> AppState:
        op = self._state_op(state)
        try:
            if op[0] == "create":
                meta = self.table.create_entity(op[1])
            else:
                meta = self.table.update_entity(op[1], **op[2])
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyError(f"app state of {state.target.app} changed") from exc
        stored = replace(state, etag=meta.get("etag"))
        self._index_now([_registry_entity(stored, stored.etag)])
        self._written((APPS_PK, state.target.key))
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
            current = self._get(_app_pk(app), "d|" + inverted_id(deployment.id))
            condition = current.metadata.get("etag") if current is not None else None
            if etag is not None and condition != etag:
                raise ConcurrencyError(f"deployment {deployment.id} changed")
            count = int(current.get("event_count", 0)) if current is not None else 0
        total = count + len(events)
        row, index_row = _rows(deployment, total)
        first: tuple = ("create", row) if condition is None else (
            "update", row, {"mode": UpdateMode.REPLACE, "etag": condition,
                            "match_condition": MatchConditions.IfNotModified})
        ops = [first] + [("upsert", _event_entity(e, app, count + n), {"mode": UpdateMode.REPLACE})
                         for n, e in enumerate(events, start=1)]
        results = self._submit(ops)
        new_etag = results[0].get("etag")
        self._remember(deployment.id, app, new_etag, total)
        index_row["row_etag"] = new_etag or ""
        self._index_now([index_row])
        self._written((index_row["PartitionKey"], index_row["RowKey"]))
        return replace(deployment, etag=new_etag)

    def _app_of(self, deployment_id: str) -> str | None:
        """The app partition of a deployment: remembered, deferred, or from its index row (1 trip)."""
        with self._lock:
            seen = self._seen.get(deployment_id)
            if seen:
                return seen[0]
            pending = self._pending.get((_index_pk(deployment_id), inverted_id(deployment_id)))
            if pending:
                return pending["app"]
        entity = self._get(_index_pk(deployment_id), inverted_id(deployment_id))
        return entity.get("app") if entity is not None else None

    def get_deployment(self, deployment_id: str, app: str | None = None) -> Deployment | None:
        """The authoritative row. `app` (the Container App name, when the caller knows it) makes it
        one point read and finds deployments the cross-app index does not list yet."""
        for partition_app in ([app] if app else []) + [None]:
            name = partition_app or self._app_of(deployment_id)
            if not name:
                return None
            entity = self._get(_app_pk(name), "d|" + inverted_id(deployment_id))
            if entity is not None:
                deployment = _deployment_from_entity(entity)
                self._remember(deployment_id, name, deployment.etag, int(entity.get("event_count", 0)))
                return deployment
            if partition_app is None:
                return None
            with self._lock:  # a wrong hint: forget it, ask the index
                self._seen.pop(deployment_id, None)
        return None

    def record_ignored(self, item: IgnoredEvent) -> None:
        self.table.upsert_entity(_ignored_entity(item), mode=UpdateMode.REPLACE)

    # ---- HistoryReader
    def list_deployments(self, query: DeploymentQuery) -> Page:
        before = self._trips()
        lo, hi = _bounds(query.since, query.until)
        if query.app:
            pk = _app_pk(query.app)
            lo, hi = "d|" + lo, ("d|" + hi if query.since else "d}")
            pk_clauses, params = ["PartitionKey eq @pk"], {"pk": pk}
        else:
            self._flush_if_pending()
            pk_clauses, params = [], {}
        after = None
        if query.continuation:
            after = decode_continuation(query.continuation)
            if not lo <= after < hi or (not query.app and after.startswith("d|")):
                raise ValueError("continuation token does not belong to this query")
        if not query.app:
            first, last = _day_range("t|", after or lo, hi)
            pk_clauses = ["PartitionKey ge @pklo", "PartitionKey le @pkhi"]
            params = {"pklo": first, "pkhi": last}
        clauses = pk_clauses + ["RowKey gt @lo" if after else "RowKey ge @lo", "RowKey lt @hi"]
        params.update(lo=after or lo, hi=hi)
        if query.environment:
            clauses.append("environment eq @env")
            params["env"] = query.environment
        if query.repository:
            clauses.append("repository eq @repo")
            params["repo"] = query.repository
        if query.status == "active":
            for n, phase in enumerate(sorted(p.value for p in TERMINAL_PHASES)):
                clauses.append(f"phase ne @t{n}")
                params[f"t{n}"] = phase
        elif query.status:
            clauses.append("phase eq @phase")
            params["phase"] = Phase(query.status).value
        if query.app and not _valid_key(params["pk"]):
            return Page([], None, round_trips=0)
        limit = max(1, min(int(query.limit), MAX_PAGE))
        entities, more = self._query(" and ".join(clauses), params, limit)
        items = []
        for entity in entities:
            deployment = _deployment_from_entity(entity)
            if query.app or entity.get("row_etag"):  # etag + event count of the `d|` row
                self._remember(deployment.id, deployment.target.app, deployment.etag,
                               int(entity.get("event_count", 0)))
            items.append(deployment)
        continuation = encode_continuation(entities[-1]["RowKey"]) if more and entities else None
        return Page(items, continuation, round_trips=self._trips() - before)

    def list_events(self, deployment_id: str, app: str | None = None) -> list[DeploymentEvent]:
        name = app or self._app_of(deployment_id)
        if not name or not _valid_key(_app_pk(name)):
            return []
        prefix = f"e|{inverted_id(deployment_id)}|"
        entities, _ = self._query("PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi",
                                  {"pk": _app_pk(name), "lo": prefix, "hi": prefix + "~"}, 5_000)
        return sorted((_event_from_entity(e) for e in entities), key=lambda e: e.seq)

    def list_apps(self) -> list[AppState]:
        self._flush_if_pending()
        entities, _ = self._query("PartitionKey eq @pk", {"pk": APPS_PK}, 5_000)
        return [_registry_from_entity(e) for e in entities]

    def list_ignored(self, since: datetime, until: datetime, limit: int = 100) -> Page:
        before = self._trips()
        lo, hi = _bounds(since, until)
        first, last = _day_range("x|", lo, hi)
        entities, more = self._query(
            "PartitionKey ge @pklo and PartitionKey le @pkhi and RowKey ge @lo and RowKey lt @hi",
            {"pklo": first, "pkhi": last, "lo": lo, "hi": hi}, max(1, min(limit, MAX_PAGE)))
        items = [_ignored_from_entity(e) for e in entities]
        continuation = encode_continuation(entities[-1]["RowKey"]) if more and entities else None
        return Page(items, continuation, round_trips=self._trips() - before)

    def _flush_if_pending(self) -> None:
        """Read-your-writes in this process for the cross-app views (see `defer_index`)."""
        if self._pending:
            self.flush_index()

    # ---- maintenance (tests, sandbox, benchmarks)
    def delete_table(self) -> None:
        self.service.delete_table(self.table_name)
        with _created_lock:
            _created_tables.discard((self.service.url, self.table_name))

    def seed(self, deployments: Iterable[tuple[Deployment, DeploymentEvent | None]], rows: str = "all") -> int:
        """Bulk-load recorded deployments (benchmarks): per deployment its `d|` row and its event
        when one is given (rows "app"), its index row (rows "index"), or all of them, upserted in
        per-partition transactions of up to 100 rows (feed it deployments of few partitions at a
        time: one app's, one day's). Not for production paths (no app state, no ETags)."""
        batches: dict[str, list[tuple]] = {}
        written = 0

        def add(entity: dict[str, Any]) -> None:
            batch = batches.setdefault(entity["PartitionKey"], [])
            batch.append(("upsert", entity, {"mode": UpdateMode.REPLACE}))
            if len(batch) >= MAX_BATCH:
                self.table.submit_transaction(batch)
                batches[entity["PartitionKey"]] = []

        for deployment, event in deployments:
            row, index_row = _rows(deployment, 1 if event is not None else 0)
            if rows in ("all", "app"):
                add(row)
                if event is not None:
                    add(_event_entity(event, deployment.target.app, 1))
            if rows in ("all", "index"):
                add(index_row)
            written += 1
        for batch in batches.values():
            if batch:
                self.table.submit_transaction(batch)
        return written
