"""Entities of the history table <-> domain objects (the row layout is in `shared.adapters.tables`).

A string property holds 64 KiB (32 K UTF-16 characters), so JSON documents (a deployment, an app
state) are stored in `doc0..doc7` chunks; texts that could outgrow that (smoke excerpts, reasons,
event data, messages) are truncated first, so a write never fails on size.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from shared.adapters.tables_keys import (
    APPS_PK, IGNORED_DAY, app_pk, day_pk, deployment_rk, event_prefix, index_key, inverted_time, state_rk,
)
from shared.domain.model import (
    AppState, Deployment, DeploymentEvent, IgnoredEvent, Phase, Target, deployment_from_dict,
    deployment_to_dict,
)

CHUNK = 30_000  # characters per string property (64 KiB as UTF-16)
MAX_CHUNKS = 8
MAX_MESSAGE = 4_000
MAX_EVENT_DATA = 16_000


# --------------------------------------------------------------------------- text helpers


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _utc(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_strings(data: dict[str, Any], limit: int) -> dict[str, Any]:
    return {k: (_clip(v, limit) if isinstance(v, str) else v) for k, v in data.items()}


def _chunks(text: str) -> dict[str, str]:
    return {f"doc{i}": text[i * CHUNK:(i + 1) * CHUNK] for i in range((len(text) + CHUNK - 1) // CHUNK)}


def _doc(entity: Any) -> Any:
    """The JSON document stored in an entity's `doc` chunks."""
    return json.loads("".join(entity.get(f"doc{i}", "") for i in range(MAX_CHUNKS)))


def _fit_doc(doc: dict[str, Any]) -> str:
    """JSON within MAX_CHUNKS properties: long texts (smoke excerpts, reasons) are truncated first."""
    text = _compact(doc)
    if len(text) <= CHUNK * MAX_CHUNKS:
        return text
    doc = dict(doc, reason=_clip(doc.get("reason", ""), 2_000))
    doc["data"] = _clip_strings(doc["data"], 1_000)
    text = _compact(doc)
    if len(text) > CHUNK * MAX_CHUNKS:
        doc["data"] = {"truncated": True}
        text = _compact(doc)
    return text


# --------------------------------------------------------------------------- deployments


def _deployment_entity(d: Deployment, pk: str, row_key: str, event_count: int, doc: str) -> dict[str, Any]:
    """The `d|` row (pk = app partition) or its index copy (pk = day partition): the same
    summary fields, so the same server-side filters work on both."""
    entity = {
        "PartitionKey": pk, "RowKey": row_key,
        "id": d.id, "app": d.target.app.lower(), "target": d.target.key,
        "environment": d.environment, "phase": d.phase.value, "repository": d.repository,
        "tag": d.tag, "digest": d.digest, "kind": d.kind.value,
        "created_at": _utc(d.created_at), "event_count": event_count,
    }
    entity.update(_chunks(doc))
    return entity


def deployment_rows(d: Deployment, event_count: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(app partition row, index row) of one deployment, serialised once. The caller sets the
    index row's `row_etag` once it knows the etag of the row it copies."""
    doc = _fit_doc(deployment_to_dict(d))
    return (_deployment_entity(d, app_pk(d.target.app), deployment_rk(d.id), event_count, doc),
            _deployment_entity(d, *index_key(d.id), event_count, doc))


def deployment_from_entity(entity: Any) -> Deployment:
    """From a `d|` row, or from an index copy: then the etag is the one of the `d|` row it copied
    (`row_etag`), so a deployment listed across apps can be saved conditionally, and fails with
    ConcurrencyError if the copy was behind."""
    etag = entity.get("row_etag") or entity.metadata.get("etag")
    return deployment_from_dict(_doc(entity), etag=etag)


# --------------------------------------------------------------------------- app states


def _state_to_dict(s: AppState) -> dict[str, Any]:
    def iso(v: datetime | None) -> str | None:
        return _utc(v) if v else None

    return {
        "subscription_id": s.target.subscription_id, "resource_group": s.target.resource_group,
        "app": s.target.app, "container": s.target.container,
        "live_deployment_id": s.live_deployment_id, "live_revision": s.live_revision,
        "live_image": s.live_image, "live_digest": s.live_digest, "live_tag": s.live_tag,
        "live_since": iso(s.live_since), "environment": s.environment,
        "active_deployment_id": s.active_deployment_id, "pending_deployment_id": s.pending_deployment_id,
        "inflight_digests": list(s.inflight_digests), "latest_version_key": s.latest_version_key,
        "live_version_key": s.live_version_key, "pending_version_key": s.pending_version_key,
        "active_version_key": s.active_version_key,
        "drift": s.drift, "drift_detail": s.drift_detail, "drift_since": iso(s.drift_since),
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
        live_version_key=data.get("live_version_key", ""),
        pending_version_key=data.get("pending_version_key", ""),
        active_version_key=data.get("active_version_key", ""),
        drift=data.get("drift", ""), drift_detail=data.get("drift_detail", ""),
        drift_since=dt(data.get("drift_since")),
        last_deployment_id=data.get("last_deployment_id", ""), last_phase=data.get("last_phase", ""),
        updated_at=dt(data.get("updated_at")), etag=etag,
    )


def state_entity(s: AppState) -> dict[str, Any]:
    return {"PartitionKey": app_pk(s.target.app), "RowKey": state_rk(s.target.key),
            "app": s.target.app.lower(), "environment": s.environment,
            **_chunks(_compact(_state_to_dict(s)))}


def registry_entity(s: AppState, state_etag: str | None) -> dict[str, Any]:
    """The apps registry copy; `state_etag` is the etag of the state row it copies, so a state
    read from `list_apps` can be saved conditionally like one from `get_app_state`."""
    entity = state_entity(s)
    entity.update(PartitionKey=APPS_PK, RowKey=s.target.key, state_etag=state_etag or "")
    return entity


def state_from_entity(entity: Any) -> AppState:
    return _state_from_dict(_doc(entity), entity.metadata.get("etag"))


def registry_from_entity(entity: Any) -> AppState:
    return _state_from_dict(_doc(entity), entity.get("state_etag") or None)


# --------------------------------------------------------------------------- events


def event_entity(e: DeploymentEvent, app: str, seq: int) -> dict[str, Any]:
    data = _compact(e.data)
    if len(data) > MAX_EVENT_DATA:
        data = json.dumps(_clip_strings(e.data, 500), default=str)
        if len(data) > MAX_EVENT_DATA:
            data = json.dumps({"truncated": True})
    return {
        "PartitionKey": app_pk(app), "RowKey": f"{event_prefix(e.deployment_id)}{seq:06d}",
        "deployment_id": e.deployment_id, "seq": seq, "at": _utc(e.at),
        "phase": e.phase.value, "message": _clip(e.message, MAX_MESSAGE), "data": data,
    }


def event_from_entity(entity: Any) -> DeploymentEvent:
    return DeploymentEvent(
        deployment_id=entity["deployment_id"], at=datetime.fromisoformat(entity["at"]),
        phase=Phase(entity["phase"]), message=entity.get("message", ""),
        data=json.loads(entity.get("data") or "{}"), seq=int(entity["seq"]),
    )


# --------------------------------------------------------------------------- dismissed events


def ignored_entity(item: IgnoredEvent) -> dict[str, Any]:
    row_key = f"{inverted_time(item.at)}|{item.key}"
    return {
        "PartitionKey": day_pk(IGNORED_DAY, row_key), "RowKey": row_key,
        "at": _utc(item.at), "outcome": item.outcome,
        "reason": _clip(item.reason, MAX_MESSAGE), "event_id": _clip(item.event_id, 512),
        "event_type": _clip(item.event_type, 256), "registry": _clip(item.registry, 256),
        "repository": _clip(item.repository, 512), "tag": _clip(item.tag, 256),
        "digest": _clip(item.digest, 256), "app": _clip(item.app, 256),
    }


def ignored_from_entity(entity: Any) -> IgnoredEvent:
    return IgnoredEvent(
        at=datetime.fromisoformat(entity["at"]), outcome=entity["outcome"], reason=entity["reason"],
        event_id=entity.get("event_id", ""), event_type=entity.get("event_type", ""),
        registry=entity.get("registry", ""), repository=entity.get("repository", ""),
        tag=entity.get("tag", ""), digest=entity.get("digest", ""), app=entity.get("app", ""),
    )
