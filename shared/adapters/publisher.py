"""Deployment outcomes as CloudEvents to an Event Grid topic (best effort).

`AcrDeploy.Deployment.Succeeded` / `Failed` / `RolledBack`, so teams route them to chat, mail or
Logic Apps. Publishing never fails a deployment: errors are logged (without tokens) and dropped.
The event id is deterministic (deployment id + outcome), so a re-published outcome (at-least-once
delivery of our own queue) can be de-duplicated by subscribers.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.domain.model import Deployment, deployment_to_dict

log = logging.getLogger("acr_deploy.publisher")

_FIELDS = ("id", "subscription_id", "resource_group", "app", "container", "kind", "phase", "reason",
           "image", "repository", "tag", "digest", "registry", "environment", "rule", "revision",
           "rollback_to", "pushed_by", "created_at", "updated_at")


def outcome_data(d: Deployment) -> dict[str, Any]:
    data = deployment_to_dict(d)
    return {key: data.get(key) for key in _FIELDS}


def app_resource_id(d: Deployment) -> str:
    t = d.target
    return (f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
            f"/providers/Microsoft.App/containerApps/{t.app}")


class NoopPublisher:
    """No topic configured: outcomes live in the history only."""

    def publish(self, event_type: str, deployment: Deployment) -> None:
        return None


class EventGridOutcomePublisher:
    def __init__(self, client: Any, send_options: dict[str, Any] | None = None) -> None:
        self._client = client
        self._options = dict(send_options or {})

    def publish(self, event_type: str, deployment: Deployment) -> None:
        from azure.core.messaging import CloudEvent

        try:
            event = CloudEvent(
                source=app_resource_id(deployment),
                type=event_type,
                subject=f"deployments/{deployment.id}",
                data=outcome_data(deployment),
                id=f"{deployment.id}-{deployment.phase.value}",
            )
            self._client.send([event], **self._options)
        except Exception as exc:  # noqa: BLE001 - best effort by design
            log.warning("could not publish %s for %s: %s", event_type, deployment.id,
                        type(exc).__name__)

    def close(self) -> None:
        self._client.close()


def build_publisher(settings: Any, credential: Any = None) -> Any:
    endpoint = getattr(settings, "events_endpoint", None)
    if not endpoint:
        return NoopPublisher()
    from azure.eventgrid import EventGridPublisherClient

    if credential is None:
        from shared.adapters.credentials import LocalEmulatorCredential

        if getattr(settings, "arm_credential", "default") == "emulator":
            credential = LocalEmulatorCredential()  # local sinks only; never leaves the machine
        else:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()  # needs "EventGrid Data Sender" on the topic
    # azure-eventgrid 4.22 drops constructor keywords for basic topics, so transport options go
    # with each send (the CA bundle is set only for local HTTPS sinks; Azure uses the system store).
    client = EventGridPublisherClient(endpoint, credential)
    options = {"connection_verify": getattr(settings, "arm_ca_bundle", None) or True,
               "retry_total": 2, "retry_backoff_factor": 0.2, "connection_timeout": 5, "read_timeout": 10}
    return EventGridOutcomePublisher(client, options)
