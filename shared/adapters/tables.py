"""The deployment history in Azure Table Storage (azure-data-tables): DeploymentRepository + HistoryReader.

Key design. Every row that one write must change together lives in ONE partition, so each write is a
single entity-group transaction (atomic, one round trip) and the indexes can never disagree with the
deployment they index. Table `<prefix>history`:

  PartitionKey "h"  (deployments, their stories, apps)
    s|<sub|rg|app>              app state: what is live and since when, coordination fields  (a)
    d|<app>|<inverted id>       a deployment, under its app name, newest first                (b)
    i|<inverted id>             the same deployment, across apps, newest first; keyed by the id,
                                so `get_deployment(id)` is one point read                      (c, d)
    e|<inverted id>|<seq>       its story, one row per state change, in order                   (c)
  PartitionKey "x"  (dismissed events)
    <inverted time>|<key>       ignored / rejected / skipped, newest first                      (e)

Ids start with the UTC time `YYYYmmddHHMMSS-`; "inverted" replaces each of those digits d by 9-d so
newer sorts first. Every question is a point read or ONE range query on RowKey that transfers only
the rows it returns (plus server-side filters for environment/status/repository). Why one partition:
a transaction cannot span partitions, and one hot partition serves ~2,000 entities/s, far more than
any deployment pipeline writes; RowKey range seeks stay fast at millions of rows.

A deployment's JSON (deployment_to_dict) is stored in `doc` chunks (a string property holds 64 KiB);
filterable summary fields (app, environment, phase, repository, tag, kind, created_at) sit beside it.
Concurrency: app state rows use ETags (If-Match / insert-only); a deployment save with an etag is
If-Match on its `i|` row inside the same transaction that appends its events, so two writers cannot
both append (and event seq numbers cannot repeat).
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
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, TableTransactionError, UpdateMode

from shared.domain.model import (
    AppState, Deployment, DeploymentEvent, IgnoredEvent, Phase, TERMINAL_PHASES, Target,
    deployment_from_dict, deployment_to_dict, event_to_dict,
)
from shared.ports import ConcurrencyError, DeploymentQuery, Page

log = logging.getLogger("acr_deploy.tables")

HISTORY_PK = "h"
IGNORED_PK = "x"
MAX_PAGE = 1000  # Table service page size limit
MAX_PAGES = 20  # per call: bounded even when server-side filters thin pages out
CHUNK = 30_000  # characters per string property (64 KiB as UTF-16)
MAX_CHUNKS = 8
MAX_MESSAGE = 4_000
MAX_EVENT_DATA = 16_000
_ID_TIME = re.compile(r"(\d{14})(.*)", re.DOTALL)

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


def _window(prefix: str, since: datetime | None, until: datetime | None) -> tuple[str, str]:
    """RowKey bounds [lo, hi) for rows `<prefix><inverted time>…` with since <= time < until
    (at one-second resolution, the resolution of the ids). `prefix` ends with '|' (or is "")."""
    lo = prefix + (_inverted_time(_ceil_second(until)) + "~" if until else "")
    if since:
        hi = prefix + _inverted_time(since.replace(microsecond=0)) + "~"
    else:
        hi = prefix[:-1] + "}" if prefix else "~~~~"  # everything under the prefix
    return lo, hi


def _app_prefix(app: str) -> str:
    return f"d|{app.lower()}|"


def _state_key(target: Target) -> str:
    return "s|" + target.key


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


def _deployment_entity(d: Deployment, row_key: str, event_count: int) -> dict[str, Any]:
    entity = {
        "PartitionKey": HISTORY_PK, "RowKey": row_key,
        "id": d.id, "app": d.target.app.lower(), "target": d.target.key,
        "environment": d.environment, "phase": d.phase.value, "repository": d.repository,
        "tag": d.tag, "kind": d.kind.value, "created_at": d.created_at.astimezone(timezone.utc).isoformat(),
        "event_count": event_count,
    }
    entity.update(_chunks(_fit_doc(deployment_to_dict(d))))
    return entity


def _deployment_from_entity(entity: Any) -> Deployment:
    return deployment_from_dict(json.loads(_join(entity)), etag=entity.metadata.get("etag"))


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
    return {"PartitionKey": HISTORY_PK, "RowKey": _state_key(s.target), "app": s.target.app.lower(),
            "environment": s.environment, **_chunks(json.dumps(_state_to_dict(s), separators=(",", ":")))}


def _state_from_entity(entity: Any) -> AppState:
    return _state_from_dict(json.loads(_join(entity)), entity.metadata.get("etag"))


def _event_entity(e: DeploymentEvent, seq: int) -> dict[str, Any]:
    data = json.dumps(e.data, separators=(",", ":"), default=str)
    if len(data) > MAX_EVENT_DATA:
        data = json.dumps({k: (_clip(v, 500) if isinstance(v, str) else v) for k, v in e.data.items()},
                          default=str)
        if len(data) > MAX_EVENT_DATA:
            data = json.dumps({"truncated": True})
    return {
        "PartitionKey": HISTORY_PK, "RowKey": f"e|{inverted_id(e.deployment_id)}|{seq:06d}",
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
    return {
        "PartitionKey": IGNORED_PK, "RowKey": f"{_inverted_time(item.at)}|{item.key}",
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
                 counter: "RequestCounter | None" = None) -> None:
        self.service = service
        self.table_name = f"{table_prefix}history"
        self.table = service.get_table_client(self.table_name)
        self._lock = threading.Lock()
        self.counter = counter or RequestCounter()
        self.entities_read = 0  # entities transferred by queries and reads (benchmarks read it)
        # id -> (etag, event_count) of the last row we saw: saves with that etag need no re-read.
        self._counts: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._ensure_table()

    @property
    def round_trips(self) -> int:
        """Every HTTP request sent, retries included (benchmarks read it)."""
        return self.counter.total

    @classmethod
    def from_connection_string(cls, connection_string: str, table_prefix: str = "acrdeploy") -> "TableStore":
        counter = RequestCounter()
        service = TableServiceClient.from_connection_string(connection_string, raw_request_hook=counter)
        return cls(service, table_prefix, counter)

    @classmethod
    def from_settings(cls, settings: Any) -> "TableStore":
        """Azurite/connection string when `AzureWebJobsStorage` is set, else the account's Table
        endpoint with DefaultAzureCredential (managed identity in Azure)."""
        if settings.storage_connection_string:
            return cls.from_connection_string(settings.storage_connection_string, settings.table_prefix)
        if settings.storage_account_name:
            from azure.identity import DefaultAzureCredential

            counter = RequestCounter()
            service = TableServiceClient(
                endpoint=f"https://{settings.storage_account_name}.table.core.windows.net",
                credential=DefaultAzureCredential(), raw_request_hook=counter)
            return cls(service, settings.table_prefix, counter)
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

    def _remember(self, deployment_id: str, etag: str | None, count: int) -> None:
        if not etag:
            return
        with self._lock:
            self._counts[deployment_id] = (etag, count)
            self._counts.move_to_end(deployment_id)
            while len(self._counts) > 2048:
                self._counts.popitem(last=False)

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
        """Up to `limit` entities in RowKey order, following service continuations (bounded).
        Returns (entities, more) where `more` means the service has further rows."""
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
        with self._lock:
            self.entities_read += len(found)
        return found[:limit], more

    # ---- DeploymentRepository
    def get_app_state(self, target: Target) -> AppState | None:
        try:
            entity = self.table.get_entity(HISTORY_PK, _state_key(target))
        except ResourceNotFoundError:
            return None
        return _state_from_entity(entity)

    def _state_op(self, state: AppState) -> tuple:
        entity = _state_entity(state)
        if state.etag is None:
            return ("create", entity)
        return ("update", entity, {"mode": UpdateMode.REPLACE, "etag": state.etag,
                                   "match_condition": MatchConditions.IfNotModified})

    def create_deployment(self, deployment: Deployment, event: DeploymentEvent, state: AppState) -> AppState:
        inv = inverted_id(deployment.id)
        ops = [
            ("create", _deployment_entity(deployment, f"i|{inv}", 1)),
            ("upsert", _deployment_entity(deployment, _app_prefix(deployment.target.app) + inv, 1),
             {"mode": UpdateMode.REPLACE}),
            ("upsert", _event_entity(event, 1), {"mode": UpdateMode.REPLACE}),
            self._state_op(state),
        ]
        results = self._submit(ops)
        self._remember(deployment.id, results[0].get("etag"), 1)
        return replace(state, etag=results[3].get("etag"))

    def save_app_state(self, state: AppState) -> AppState:
        op = self._state_op(state)
        try:
            if op[0] == "create":
                meta = self.table.create_entity(op[1])
            else:
                meta = self.table.update_entity(op[1], **op[2])
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyError(f"app state of {state.target.app} changed") from exc
        return replace(state, etag=meta.get("etag"))

    def save_deployment(self, deployment: Deployment, *events: DeploymentEvent) -> Deployment:
        if len(events) > 97:  # a transaction holds 100 operations (row, app row, events)
            raise ValueError("at most 97 events per save")
        if deployment.etag is not None:
            return self._save(deployment, events, deployment.etag)
        # Unconditional save: condition on what we read, so concurrent appends never share a seq.
        for _ in range(5):
            try:
                return self._save(deployment, events, None)
            except ConcurrencyError:
                continue
        raise ConcurrencyError(f"deployment {deployment.id} kept changing")

    def _save(self, deployment: Deployment, events: tuple[DeploymentEvent, ...], etag: str | None) -> Deployment:
        count = None
        if etag is not None:
            with self._lock:
                cached = self._counts.get(deployment.id)
            if cached and cached[0] == etag:
                count, condition = cached[1], etag
        if count is None:  # unknown: read the row for its event count (and etag when unconditional)
            try:
                current = self.table.get_entity(HISTORY_PK, f"i|{inverted_id(deployment.id)}")
            except ResourceNotFoundError:
                current = None
            condition = current.metadata.get("etag") if current is not None else None
            if etag is not None and condition != etag:
                raise ConcurrencyError(f"deployment {deployment.id} changed")
            count = int(current.get("event_count", 0)) if current is not None else 0
        inv = inverted_id(deployment.id)
        total = count + len(events)
        row = _deployment_entity(deployment, f"i|{inv}", total)
        first: tuple = ("create", row) if condition is None else (
            "update", row, {"mode": UpdateMode.REPLACE, "etag": condition,
                            "match_condition": MatchConditions.IfNotModified})
        ops = [first,
               ("upsert", _deployment_entity(deployment, _app_prefix(deployment.target.app) + inv, total),
                {"mode": UpdateMode.REPLACE})]
        ops += [("upsert", _event_entity(e, count + n), {"mode": UpdateMode.REPLACE})
                for n, e in enumerate(events, start=1)]
        results = self._submit(ops)
        new_etag = results[0].get("etag")
        self._remember(deployment.id, new_etag, total)
        return replace(deployment, etag=new_etag)

    def get_deployment(self, deployment_id: str) -> Deployment | None:
        try:
            entity = self.table.get_entity(HISTORY_PK, f"i|{inverted_id(deployment_id)}")
        except ResourceNotFoundError:
            return None
        with self._lock:
            self.entities_read += 1
        deployment = _deployment_from_entity(entity)
        self._remember(deployment_id, deployment.etag, int(entity.get("event_count", 0)))
        return deployment

    def record_ignored(self, item: IgnoredEvent) -> None:
        self.table.upsert_entity(_ignored_entity(item), mode=UpdateMode.REPLACE)

    # ---- HistoryReader
    def list_deployments(self, query: DeploymentQuery) -> Page:
        before = self._trips()
        prefix = _app_prefix(query.app) if query.app else "i|"
        lo, hi = _window(prefix, query.since, query.until)
        if query.continuation:
            after = decode_continuation(query.continuation)
            if not lo <= after < hi:
                raise ValueError("continuation token does not belong to this query")
            lo = after
        clauses = ["PartitionKey eq @pk", "RowKey gt @lo" if query.continuation else "RowKey ge @lo",
                   "RowKey lt @hi"]
        params: dict[str, Any] = {"pk": HISTORY_PK, "lo": lo, "hi": hi}
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
        limit = max(1, min(int(query.limit), MAX_PAGE))
        entities, more = self._query(" and ".join(clauses), params, limit)
        items = [_deployment_from_entity(e) for e in entities]
        continuation = encode_continuation(entities[-1]["RowKey"]) if more and entities else None
        return Page(items, continuation, round_trips=self._trips() - before)

    def list_events(self, deployment_id: str) -> list[DeploymentEvent]:
        prefix = f"e|{inverted_id(deployment_id)}|"
        entities, _ = self._query("PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi",
                                  {"pk": HISTORY_PK, "lo": prefix, "hi": prefix + "~"}, 5_000)
        return sorted((_event_from_entity(e) for e in entities), key=lambda e: e.seq)

    def list_apps(self) -> list[AppState]:
        entities, _ = self._query("PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi",
                                  {"pk": HISTORY_PK, "lo": "s|", "hi": "s}"}, 5_000)
        return [_state_from_entity(e) for e in entities]

    def list_ignored(self, since: datetime, until: datetime, limit: int = 100) -> Page:
        before = self._trips()
        lo, hi = _window("", since, until)
        entities, more = self._query("PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                                     {"pk": IGNORED_PK, "lo": lo, "hi": hi}, max(1, min(limit, MAX_PAGE)))
        items = [_ignored_from_entity(e) for e in entities]
        continuation = encode_continuation(entities[-1]["RowKey"]) if more and entities else None
        return Page(items, continuation, round_trips=self._trips() - before)

    # ---- maintenance (tests, sandbox)
    def delete_table(self) -> None:
        self.service.delete_table(self.table_name)
        with _created_lock:
            _created_tables.discard((self.service.url, self.table_name))

    def seed(self, deployments: Iterable[tuple[Deployment, DeploymentEvent | None]]) -> int:
        """Bulk-load recorded deployments (benchmarks): per deployment its i| and d| rows, plus its
        event when one is given, in transactions of up to 99 rows. Not for production paths (no app
        state, no ETags)."""
        batch: list[tuple] = []
        written = 0
        for deployment, event in deployments:
            inv = inverted_id(deployment.id)
            count = 1 if event is not None else 0
            batch += [
                ("upsert", _deployment_entity(deployment, f"i|{inv}", count), {"mode": UpdateMode.REPLACE}),
                ("upsert", _deployment_entity(deployment, _app_prefix(deployment.target.app) + inv, count),
                 {"mode": UpdateMode.REPLACE}),
            ]
            if event is not None:
                batch.append(("upsert", _event_entity(event, 1), {"mode": UpdateMode.REPLACE}))
            written += 1
            if len(batch) >= 97:
                self.table.submit_transaction(batch)
                batch = []
        if batch:
            self.table.submit_transaction(batch)
        return written
