"""The registry → Event Grid bridge, driven by real pushes: skopeo pushes an OCI layout into
Debian's docker-registry, whose notifications reach the bridge, which delivers to a recording
HTTP subscriber the way Event Grid delivers to a webhook."""

from __future__ import annotations

import httpx
import pytest

from devtools.netutil import free_port
from devtools.sandbox.bridge import IMAGE_PUSHED
from devtools.sandbox.sandbox import REGISTRY_RESOURCE_ID
from shared.domain.events import parse_event
from shared.domain.model import ImagePush

pytestmark = pytest.mark.e2e


def test_a_push_becomes_one_acr_image_pushed_event(registry_bridge, subscriber):
    rb = registry_bridge(subscriber.url, default_actor="dana")
    image = rb.push("orders-api:1.4.2")

    (delivery,) = subscriber.wait_for(1)
    assert rb.bridge.wait_idle(5)
    assert len(subscriber.deliveries) == 1, "blob uploads must not become events: one manifest, one event"
    assert delivery.headers["aeg-event-type"] == "Notification"
    assert delivery.headers["aeg-delivery-count"] == "0"
    assert delivery.headers["content-type"].startswith("application/json")
    assert isinstance(delivery.body, list) and len(delivery.body) == 1  # Event Grid: an array of one
    event = delivery.body[0]
    assert event["eventType"] == IMAGE_PUSHED
    assert event["topic"] == REGISTRY_RESOURCE_ID
    assert event["subject"] == "orders-api:1.4.2"
    assert event["data"]["target"]["digest"] == image.digest
    assert event["data"]["target"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert event["data"]["request"]["host"] == rb.registry
    # The pipeline's own parser accepts it as a push of exactly this image.
    push = parse_event(event)
    assert isinstance(push, ImagePush), push
    assert push.image == f"{rb.registry}/orders-api@{image.digest}"
    assert push.tag == "1.4.2"
    # The registry takes anonymous pushes (no actor in its notification): the configured pusher stands in.
    assert event["data"]["actor"] == {"name": "dana"} and push.actor == "dana"


def test_cloudevents_mode_delivers_structured_cloudevents(registry_bridge, subscriber):
    rb = registry_bridge(subscriber.url, schema="cloudevents")
    image = rb.push("payments-api:2.0.1-rc.1")

    (delivery,) = subscriber.wait_for(1)
    assert delivery.headers["content-type"].startswith("application/cloudevents+json")
    assert delivery.headers["aeg-event-type"] == "Notification"
    event = delivery.body
    assert event["specversion"] == "1.0"
    assert event["type"] == IMAGE_PUSHED
    assert event["source"] == REGISTRY_RESOURCE_ID
    push = parse_event(event)
    assert isinstance(push, ImagePush), push
    assert (push.schema, push.repository, push.tag, push.digest) == (
        "cloudevents", "payments-api", "2.0.1-rc.1", image.digest)


def test_failed_deliveries_are_retried_with_backoff_and_the_same_event(registry_bridge, subscriber):
    subscriber.script = [500, 503]  # two failures, then 200
    rb = registry_bridge(subscriber.url, initial_backoff_s=0.2)
    rb.push("orders-api:1.4.3")

    deliveries = subscriber.wait_for(3)
    assert [d.headers["aeg-delivery-count"] for d in deliveries] == ["0", "1", "2"]
    assert len({d.body[0]["id"] for d in deliveries}) == 1, "a redelivery carries the same event id"
    gaps = [b.at - a.at for a, b in zip(deliveries, deliveries[1:])]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, f"exponential back-off expected, got {gaps}"
    assert rb.bridge.wait_idle(5)
    assert rb.bridge.stats["delivered"] == 1 and rb.bridge.stats["deadlettered"] == 0
    assert not list(rb.deadletter_dir.glob("*.json"))


def test_an_unreachable_webhook_ends_in_the_dead_letter_folder(registry_bridge):
    dead = f"http://127.0.0.1:{free_port()}/runtime/webhooks/EventGrid?functionName=on_image_pushed&code=secret-key"
    rb = registry_bridge(dead, max_attempts=3)
    image = rb.push("orders-api:1.4.4")

    (record,) = rb.dead_letters(1)
    assert record["deadLetterReason"] == "MaxDeliveryAttemptsExceeded"
    assert record["deliveryAttempts"] == 3
    assert record["lastHttpStatusCode"] is None  # nothing answered
    assert record["event"]["data"]["target"]["digest"] == image.digest
    assert "secret-key" not in str(record), "the function key must not be written to the dead-letter record"


def test_a_webhook_refusing_the_event_is_not_retried(registry_bridge, subscriber):
    subscriber.script = [400]
    rb = registry_bridge(subscriber.url, max_attempts=5)
    rb.push("orders-api:1.4.5")

    (record,) = rb.dead_letters(1)
    assert record["deadLetterReason"] == "NonRetriableError"
    assert record["deliveryAttempts"] == 1 and record["lastHttpStatusCode"] == 400
    assert len(subscriber.deliveries) == 1


def test_blob_pushes_pulls_untagged_and_malformed_pushes_are_dropped(registry_bridge, subscriber):
    rb = registry_bridge(subscriber.url)
    digest = "sha256:" + "a" * 64
    envelope = {"events": [
        {"id": "1", "action": "push", "target": {"mediaType": "application/octet-stream", "digest": digest,
                                                 "repository": "orders-api"}},
        {"id": "2", "action": "pull", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                 "digest": digest, "repository": "orders-api", "tag": "1.0.0"}},
        {"id": "3", "action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                 "digest": digest, "repository": "orders-api"}},
        {"id": "4", "action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                 "digest": digest, "repository": "orders-api", "tag": "1.0.1",
                                                 "size": 10}},
        {"id": "5", "action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                 "digest": "sha256:not-hex", "repository": "orders-api",
                                                 "tag": "1.0.2"}},
    ]}
    response = httpx.post(rb.bridge.notify_url, json=envelope,
                          headers={"content-type": "application/vnd.docker.distribution.events.v1+json"})
    assert response.status_code == 200 and response.json() == {"accepted": 1}
    (delivery,) = subscriber.wait_for(1)
    assert delivery.body[0]["subject"] == "orders-api:1.0.1"
    assert rb.bridge.stats["ignored"] == 3 and rb.bridge.stats["malformed"] == 1
    bad = httpx.post(rb.bridge.notify_url, content=b"not json")
    assert bad.status_code == 400
