"""Build ACR-shaped Event Grid events: `Microsoft.ContainerRegistry.ImagePushed` / `ImageDeleted`,
in the Event Grid schema or as CloudEvents 1.0, field for field as the published samples
(shared/reference/eventgrid/). Used by `acr-deploy send-event`, the sandbox's registry bridge,
tests and benchmarks, so all of them send what Azure Container Registry sends.

    event = image_pushed(registry="myreg.azurecr.io", repository="orders-api", tag="1.4.2",
                         digest="sha256:...", schema="cloudevents")
    body, headers = notification(event, schema="cloudevents")   # one webhook delivery

Times are written as Event Grid writes them: `eventTime`/`time` with 7 fractional digits,
`data.timestamp` with 9, both in UTC with `Z`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Iterable

IMAGE_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
IMAGE_DELETED = "Microsoft.ContainerRegistry.ImageDeleted"
SCHEMAS = ("eventgrid", "cloudevents")
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST_V1 = "application/vnd.oci.image.manifest.v1+json"
DEFAULT_USER_AGENT = "acr-deploy-send-event/0.1 (sample event; no image was pushed)"
# Where no real registry exists (local runs), resource ids use the tests' all-zero subscription.
LOCAL_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
LOCAL_RESOURCE_GROUP = "acr-deploy-local"

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def default_registry_resource_id(login_server: str, *, subscription_id: str = LOCAL_SUBSCRIPTION,
                         resource_group: str = LOCAL_RESOURCE_GROUP) -> str:
    """The `topic`/`source` an ACR's events carry. The registry name is the login server's first
    label, alphanumerics only (ACR names are; `localhost:5000` -> `localhost5000`)."""
    host = login_server.lower()
    name = re.sub(r"[^a-z0-9]", "", host.split(".", 1)[0]) or "registry"
    return (f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.ContainerRegistry/registries/{name}")


def sample_digest(*parts: str) -> str:
    """A well-formed sha256 digest: random without arguments, else derived from `parts`."""
    seed = "\n".join(parts).encode() if parts else uuid.uuid4().bytes
    return "sha256:" + hashlib.sha256(seed).hexdigest()


def event_time_text(moment: datetime) -> str:
    """`2018-04-25T21:39:47.6549614Z`: Event Grid's 7 fractional digits (Python has 6)."""
    utc = moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def registry_timestamp_text(moment: datetime) -> str:
    """`2018-04-25T21:39:47.276585742Z`: the registry's nanosecond timestamp in `data`."""
    return event_time_text(moment)[:-2] + "000Z"


def _envelope(*, event_type: str, schema: str, event_id: str, source: str, subject: str,
              when: datetime, data: dict[str, Any]) -> dict[str, Any]:
    if schema == "cloudevents":
        # Key order as in the published CloudEvents sample.
        return {"id": event_id, "source": source, "subject": subject, "type": event_type,
                "time": event_time_text(when), "data": data, "specversion": "1.0"}
    if schema == "eventgrid":
        return {"id": event_id, "topic": source, "subject": subject, "eventType": event_type,
                "eventTime": event_time_text(when), "data": data, "dataVersion": "2.0",
                "metadataVersion": "1"}
    raise ValueError(f"schema must be one of {', '.join(SCHEMAS)}, not {schema!r}")


def _data(*, action: str, data_id: str | None, when: datetime, location: str | None,
          target: dict[str, Any], registry: str, request_id: str | None, method: str,
          user_agent: str, actor: str | None, source: dict[str, str] | None,
          connected_registry: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": data_id or str(uuid.uuid4()),
        "timestamp": registry_timestamp_text(when),
        "action": action,
    }
    if location:
        data["location"] = location
    data["target"] = target
    data["request"] = {"id": request_id or str(uuid.uuid4()), "host": registry, "method": method,
                       "useragent": user_agent}
    if actor is not None:
        data["actor"] = {"name": actor}
    if source is not None:
        data["source"] = dict(source)
    if connected_registry:
        data["connectedRegistry"] = {"name": connected_registry}
    return data


def _check(repository: str, digest: str) -> None:
    if not repository:
        raise ValueError("repository is required")
    if not _DIGEST.fullmatch(digest):
        raise ValueError(f"digest must be sha256: + 64 lowercase hex, not {digest!r}")


def image_pushed(
    *,
    registry: str,
    repository: str,
    tag: str,
    digest: str | None = None,
    registry_resource_id: str | None = None,
    schema: str = "eventgrid",
    media_type: str = DOCKER_MANIFEST_V2,
    size: int = 1024,
    event_id: str | None = None,
    data_id: str | None = None,
    event_time: datetime | None = None,
    request_id: str | None = None,
    user_agent: str = DEFAULT_USER_AGENT,
    location: str | None = None,
    actor: str | None = None,
    source: dict[str, str] | None = None,
    connected_registry: str | None = None,
) -> dict[str, Any]:
    """One ImagePushed event. `registry` is the login server (`data.request.host`); the topic /
    source defaults to a resource id derived from it. Optional `location`, `actor`, `source`
    (`{"addr", "instanceID"}`) and `connected_registry` appear only when given, as in ACR's
    samples. Unset ids and the digest are random; `event_time` defaults to now."""
    digest = digest or sample_digest()
    _check(repository, digest)
    if not tag:
        raise ValueError("tag is required for ImagePushed (a push by digest has none; build it by hand)")
    when = event_time or datetime.now(timezone.utc)
    target = {"mediaType": media_type, "size": size, "digest": digest, "length": size,
              "repository": repository, "tag": tag}
    data = _data(action="push", data_id=data_id, when=when, location=location, target=target,
                 registry=registry, request_id=request_id, method="PUT", user_agent=user_agent,
                 actor=actor, source=source, connected_registry=connected_registry)
    return _envelope(event_type=IMAGE_PUSHED, schema=schema, event_id=event_id or str(uuid.uuid4()),
                     source=registry_resource_id or default_registry_resource_id(registry),
                     subject=f"{repository}:{tag}", when=when, data=data)


def image_deleted(
    *,
    registry: str,
    repository: str,
    digest: str,
    registry_resource_id: str | None = None,
    schema: str = "eventgrid",
    media_type: str = DOCKER_MANIFEST_V2,
    event_id: str | None = None,
    data_id: str | None = None,
    event_time: datetime | None = None,
    request_id: str | None = None,
    user_agent: str = DEFAULT_USER_AGENT,
    location: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """One ImageDeleted event: a manifest deleted by digest (ACR's sample carries no tag, size
    or length in `target`, and the subject is the repository)."""
    _check(repository, digest)
    when = event_time or datetime.now(timezone.utc)
    target = {"mediaType": media_type, "digest": digest, "repository": repository}
    data = _data(action="delete", data_id=data_id, when=when, location=location, target=target,
                 registry=registry, request_id=request_id, method="DELETE", user_agent=user_agent,
                 actor=actor, source=None, connected_registry=None)
    return _envelope(event_type=IMAGE_DELETED, schema=schema, event_id=event_id or str(uuid.uuid4()),
                     source=registry_resource_id or default_registry_resource_id(registry),
                     subject=repository, when=when, data=data)


def notification(events: dict[str, Any] | Iterable[dict[str, Any]], *, schema: str,
                 delivery_count: int = 0) -> tuple[bytes, dict[str, str]]:
    """Body and headers of one Event Grid webhook delivery (`aeg-event-type: Notification`): an
    array in the Event Grid schema; one CloudEvent (`application/cloudevents+json`) or a batch
    (`application/cloudevents-batch+json`)."""
    batch = [events] if isinstance(events, dict) else list(events)
    headers = {"aeg-event-type": "Notification", "aeg-delivery-count": str(delivery_count)}
    if schema == "cloudevents":
        if len(batch) == 1:
            headers["Content-Type"] = "application/cloudevents+json; charset=utf-8"
            return json.dumps(batch[0]).encode("utf-8"), headers
        headers["Content-Type"] = "application/cloudevents-batch+json; charset=utf-8"
        return json.dumps(batch).encode("utf-8"), headers
    if schema == "eventgrid":
        headers["Content-Type"] = "application/json"
        if batch:
            headers["aeg-data-version"] = str(batch[0].get("dataVersion", ""))
            headers["aeg-metadata-version"] = str(batch[0].get("metadataVersion", "1"))
        return json.dumps(batch).encode("utf-8"), headers
    raise ValueError(f"schema must be one of {', '.join(SCHEMAS)}, not {schema!r}")


def webhook_url(function_base_url: str, *, function_name: str = "on_image_pushed",
                code: str | None = None) -> str:
    """`<base>/runtime/webhooks/EventGrid?functionName=NAME[&code=KEY]`: the Event Grid trigger's
    endpoint on func start, the dev host and Azure alike."""
    from urllib.parse import urlencode

    query = {"functionName": function_name}
    if code:
        query["code"] = code
    return f"{function_base_url.rstrip('/')}/runtime/webhooks/EventGrid?{urlencode(query)}"
