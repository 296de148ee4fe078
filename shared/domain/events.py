"""Parse ACR events (Event Grid schema or CloudEvents 1.0) into an `ImagePush`, or say why not.

Pure and total: `parse_event` never raises, whatever JSON it is given (numbers where strings belong,
nulls, huge strings, lists). An exception in the trigger makes Event Grid redeliver the same bad
event for a day, so bad input becomes a typed `Rejected` (malformed, to be looked at) or `Ignored`
(well-formed but not something we deploy: deletes, charts, signatures, untagged pushes, other types).

Field names follow the published samples in shared/reference/eventgrid/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Union

from shared.domain.model import ImagePush
from shared.domain.references import REPOSITORY

IMAGE_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"

# Media types of image manifests we deploy. Anything else that arrives as an ImagePushed
# (Helm charts pushed as OCI artifacts, cosign/notation signatures, SBOMs, attestations, the
# deprecated schema1) is acknowledged and ignored.
IMAGE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    }
)

TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
# A registry host as ACR/Docker send it in data.request.host: DNS name or IPv4, optional port.
HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?")
# Tags that cosign/notation/oras-style tooling uses for artifacts attached to an image.
ARTIFACT_TAG_RE = re.compile(r"sha256-[0-9a-fA-F]{64}(?:\.[A-Za-z0-9_-]+)*")
# Many clients limit `<host>/<name>` to 255 characters; the spec suggests the same bound.
MAX_NAME_LENGTH = 255
MAX_ID_LENGTH = 512
MAX_FIELD_ECHO = 256  # how much of a bad value we keep in a record


@dataclass(frozen=True)
class NotDeployable:
    """Why an event does not become a deployment, with whatever identifying fields were readable."""

    reason: str
    event_id: str = ""
    event_type: str = ""
    registry: str = ""
    repository: str = ""
    tag: str = ""
    digest: str = ""
    source: str = ""  # topic / source (resource id), if readable
    validation_code: str = ""  # SubscriptionValidation only: what the webhook must echo

    outcome = "not-deployable"

    def to_dict(self) -> dict[str, str]:
        data = {"outcome": self.outcome, "reason": self.reason}
        for name in ("event_id", "event_type", "registry", "repository", "tag", "digest"):
            value = getattr(self, name)
            if value:
                data[name] = value
        return data


@dataclass(frozen=True)
class Ignored(NotDeployable):
    """Well-formed, but not something we deploy (acknowledged, recorded, never retried)."""

    outcome = "ignored"


@dataclass(frozen=True)
class Rejected(NotDeployable):
    """Malformed or hostile (recorded for someone to look at, acknowledged)."""

    outcome = "rejected"


ParseResult = Union[ImagePush, Ignored, Rejected]


def clip(value: Any, limit: int = MAX_FIELD_ECHO) -> str:
    """A short printable echo of a value for reasons/records (never the whole of a huge string)."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(ch if ch.isprintable() else "?" for ch in text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _str(value: Any) -> str:
    """Best-effort string for identifying fields of a bad event (non-strings become '')."""
    return clip(value) if isinstance(value, str) else ""


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 as Event Grid writes it (7-9 fractional digits, 'Z'); naive = UTC. None if unusable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not 10 <= len(value) <= 64:
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    # Python < 3.11 accepts at most 6 fractional digits: trim the rest (sub-µs precision is noise).
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def parse_event(raw: Any) -> ParseResult:
    """One event (a dict as delivered) → ImagePush | Ignored | Rejected. Never raises."""
    try:
        return _parse(raw)
    except Exception as exc:  # noqa: BLE001 - belt and braces: a parser bug must not cause redelivery
        return Rejected(reason=f"unparseable event ({type(exc).__name__})")


def _parse(raw: Any) -> ParseResult:
    if not isinstance(raw, dict):
        return Rejected(reason=f"event must be a JSON object, not {type(raw).__name__}")
    if "specversion" in raw:
        schema, type_key, source_key, time_key = "cloudevents", "type", "source", "time"
    elif "eventType" in raw:
        schema, type_key, source_key, time_key = "eventgrid", "eventType", "topic", "eventTime"
    else:
        return Rejected(reason="neither an Event Grid event (eventType) nor a CloudEvent (specversion)")

    event_id, event_type, source = raw.get("id"), raw.get(type_key), raw.get(source_key)
    ids = {"event_id": _str(event_id), "event_type": _str(event_type), "source": _str(source)}
    if schema == "cloudevents" and raw.get("specversion") != "1.0":
        return Rejected(reason=f"unsupported CloudEvents specversion {clip(raw.get('specversion'), 20)}", **ids)
    if not isinstance(event_type, str) or not event_type:
        return Rejected(reason=f"{type_key} must be a non-empty string", **ids)
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > MAX_ID_LENGTH:
        return Rejected(reason=f"id must be a non-empty string of at most {MAX_ID_LENGTH} characters", **ids)

    data = raw.get("data")
    if event_type == SUBSCRIPTION_VALIDATION:
        code = data.get("validationCode") if isinstance(data, dict) else None
        return Ignored(
            reason="subscription validation handshake (answered by the host, not a push)",
            validation_code=code if isinstance(code, str) and len(code) <= 128 else "",
            **ids,
        )
    if event_type != IMAGE_PUSHED:
        return Ignored(reason=f"event type {clip(event_type, 100)} is not {IMAGE_PUSHED}", **ids)

    if source is not None and not isinstance(source, str):
        return Rejected(reason=f"{source_key} must be a string", **ids)
    if not isinstance(data, dict):
        return Rejected(reason="data must be an object", **ids)
    target, request = data.get("target"), data.get("request")
    if not isinstance(target, dict):
        return Rejected(reason="data.target must be an object", **ids)
    if not isinstance(request, dict):
        return Rejected(reason="data.request must be an object (it names the registry host)", **ids)

    host, repository, tag, digest = (request.get("host"), target.get("repository"),
                                     target.get("tag"), target.get("digest"))
    ids.update(registry=_str(host).lower(), repository=_str(repository), tag=_str(tag), digest=_str(digest))

    media_type = target.get("mediaType")
    if media_type is not None and not isinstance(media_type, str):
        return Rejected(reason="data.target.mediaType must be a string", **ids)
    media = (media_type or "").split(";", 1)[0].strip().lower()
    if not media:
        return Ignored(reason="no data.target.mediaType: cannot tell it is an image manifest", **ids)
    if media not in IMAGE_MEDIA_TYPES:
        return Ignored(reason=f"media type {clip(media, 120)} is not an image manifest", **ids)
    artifact_type = target.get("artifactType")
    if artifact_type not in (None, ""):
        return Ignored(
            reason=f"artifact (artifactType {clip(artifact_type, 120)}), not a runnable image", **ids
        )

    if tag is None or tag == "":
        return Ignored(reason="push without a tag (by digest): nothing names a version", **ids)
    if not isinstance(tag, str):
        return Rejected(reason="data.target.tag must be a string", **ids)
    if ARTIFACT_TAG_RE.fullmatch(tag):
        return Ignored(reason=f"tag {clip(tag, 100)} is a signature/attestation/SBOM artifact tag", **ids)

    if not isinstance(host, str) or not host:
        return Rejected(reason="data.request.host must be a non-empty string", **ids)
    if len(host) > 253 or not HOST_RE.fullmatch(host):
        return Rejected(reason=f"data.request.host {clip(host, 100)} is not a registry host name", **ids)
    registry = host.lower()
    if not isinstance(repository, str) or not repository:
        return Rejected(reason="data.target.repository must be a non-empty string", **ids)
    if len(registry) + 1 + len(repository) > MAX_NAME_LENGTH or not REPOSITORY.fullmatch(repository):
        return Rejected(
            reason=f"repository {clip(repository, 100)} is not a valid OCI repository name "
            f"(lowercase components, at most {MAX_NAME_LENGTH} characters with the registry)",
            **ids,
        )
    if not TAG_RE.fullmatch(tag):
        return Rejected(reason=f"tag {clip(tag, 140)} is not a valid tag", **ids)
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        return Rejected(reason=f"digest {clip(digest, 80)} is not sha256: + 64 lowercase hex", **ids)

    # Event time names the deployment (deterministic ids), so a bad one is rejected, not replaced;
    # only when it is absent does ACR's data.timestamp stand in.
    raw_time = raw.get(time_key)
    event_time = parse_time(raw_time) if raw_time is not None else parse_time(data.get("timestamp"))
    if event_time is None:
        return Rejected(reason=f"{time_key} is missing or not an ISO-8601 time", **ids)

    actor = data.get("actor")
    actor_name = actor.get("name") if isinstance(actor, dict) else None
    return ImagePush(
        event_id=event_id,
        event_source=source or "",
        event_time=event_time.astimezone(timezone.utc),
        registry=registry,
        repository=repository,
        tag=tag,
        digest=digest,
        media_type=media,
        actor=clip(actor_name, 128) if isinstance(actor_name, str) else "",
        schema=schema,
    )
