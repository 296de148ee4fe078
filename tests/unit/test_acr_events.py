"""The ACR event builder: the published samples' shape, key for key, and the project's own parser
reads what it builds."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from shared import acr_events
from shared.domain.references import parse_reference
from shared.domain.events import Ignored, parse_event
from shared.domain.model import ImagePush

REF = Path(__file__).resolve().parents[1] / "fixtures" / "eventgrid"  # the published samples
DIGEST = "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5"
WHEN = datetime(2018, 4, 25, 21, 39, 47, 654961, tzinfo=timezone.utc)

# Key sets of the published samples (kept here too, so a clone without the samples still checks).
EG_KEYS = {"id", "topic", "subject", "eventType", "eventTime", "data", "dataVersion", "metadataVersion"}
EG_DATA_KEYS = {"id", "timestamp", "action", "location", "target", "request", "connectedRegistry"}
CE_KEYS = {"id", "source", "subject", "type", "time", "data", "specversion"}
CE_DATA_KEYS = {"id", "timestamp", "action", "target", "request"}
TARGET_KEYS = {"mediaType", "size", "digest", "length", "repository", "tag"}
REQUEST_KEYS = {"id", "host", "method", "useragent"}


def _sample(name: str) -> dict:
    return json.loads((REF / name).read_text())[0]


def _pushed(schema: str, **extra) -> dict:
    return acr_events.image_pushed(registry="demo.azurecr.io", repository="aci-helloworld", tag="v1",
                                   digest=DIGEST, schema=schema, event_time=WHEN, **extra)


def test_inline_key_sets_are_the_published_samples():
    eg = _sample("acr-ImagePushed.eventgrid-schema.docs-azure-cn.json")
    ce = _sample("acr-ImagePushed.cloudevents.docs-learn.json")
    assert (set(eg), set(eg["data"]), set(ce), set(ce["data"])) == (EG_KEYS, EG_DATA_KEYS, CE_KEYS, CE_DATA_KEYS)
    for sample in (eg, ce):
        assert set(sample["data"]["target"]) == TARGET_KEYS
        assert set(sample["data"]["request"]) == REQUEST_KEYS


def test_event_grid_schema_has_exactly_the_sample_keys():
    event = _pushed("eventgrid", location="chinanorth", connected_registry="edge1")
    assert set(event) == EG_KEYS
    assert set(event["data"]) == EG_DATA_KEYS
    assert set(event["data"]["target"]) == TARGET_KEYS
    assert set(event["data"]["request"]) == REQUEST_KEYS
    assert event["eventType"] == "Microsoft.ContainerRegistry.ImagePushed"
    assert (event["dataVersion"], event["metadataVersion"]) == ("2.0", "1")
    assert event["subject"] == "aci-helloworld:v1"
    assert event["data"]["connectedRegistry"] == {"name": "edge1"}


def test_cloudevents_schema_has_exactly_the_sample_keys():
    event = _pushed("cloudevents")
    assert set(event) == CE_KEYS
    assert set(event["data"]) == CE_DATA_KEYS
    assert event["specversion"] == "1.0"
    assert event["type"] == "Microsoft.ContainerRegistry.ImagePushed"


def test_values_match_the_sample_where_the_inputs_do():
    event = _pushed("eventgrid", location="chinanorth", size=3023, request_id="r-1")
    assert event["eventTime"] == "2018-04-25T21:39:47.6549610Z"  # 7 digits, like the sample
    assert event["data"]["timestamp"] == "2018-04-25T21:39:47.654961000Z"  # 9 digits
    assert event["data"]["action"] == "push"
    assert event["data"]["target"] == {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 3023,
        "digest": DIGEST, "length": 3023, "repository": "aci-helloworld", "tag": "v1"}
    assert event["data"]["request"]["host"] == "demo.azurecr.io"
    assert event["data"]["request"]["method"] == "PUT"
    assert event["topic"] == ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
                              "acr-deploy-local/providers/Microsoft.ContainerRegistry/registries/demo")


@pytest.mark.parametrize("schema", acr_events.SCHEMAS)
def test_the_projects_parser_reads_what_the_builder_writes(schema):
    topic = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/demo"
    event = _pushed(schema, registry_resource_id=topic, event_id="evt-1", actor="ci-bot")
    push = parse_event(event)
    assert isinstance(push, ImagePush), push
    assert (push.registry, push.repository, push.tag, push.digest) == ("demo.azurecr.io", "aci-helloworld", "v1", DIGEST)
    assert push.event_id == "evt-1"
    assert push.event_source == topic
    assert push.event_time == WHEN
    assert push.schema == schema
    assert push.actor == "ci-bot"


@pytest.mark.parametrize("schema", acr_events.SCHEMAS)
def test_image_deleted_is_built_and_ignored_by_the_parser(schema):
    event = acr_events.image_deleted(registry="demo.azurecr.io", repository="aci-helloworld",
                                     digest=DIGEST, schema=schema)
    assert event["data"]["action"] == "delete"
    assert set(event["data"]["target"]) == {"mediaType", "digest", "repository"}
    assert event["subject"] == "aci-helloworld"
    assert isinstance(parse_event(event), Ignored)


def test_defaults_are_fresh_and_well_formed():
    first = acr_events.image_pushed(registry="r.azurecr.io", repository="app", tag="1.0.0")
    second = acr_events.image_pushed(registry="r.azurecr.io", repository="app", tag="1.0.0")
    assert first["id"] != second["id"] and first["data"]["target"]["digest"] != second["data"]["target"]["digest"]
    assert isinstance(parse_event(first), ImagePush)


@pytest.mark.parametrize("kwargs, message", [
    ({"digest": "sha256:abc"}, "digest"),
    ({"tag": ""}, "tag"),
    ({"schema": "xml"}, "schema"),
    ({"repository": ""}, "repository"),
])
def test_bad_inputs_are_refused(kwargs, message):
    base = {"registry": "r.azurecr.io", "repository": "app", "tag": "1"}
    with pytest.raises(ValueError, match=message):
        acr_events.image_pushed(**{**base, **kwargs})


@pytest.mark.parametrize("reference, expected", [
    ("orders-api:1.4.2", (None, "orders-api", "1.4.2", None)),
    ("myreg.azurecr.io/team/orders-api:1.4.2", ("myreg.azurecr.io", "team/orders-api", "1.4.2", None)),
    ("localhost:5000/app:v1", ("localhost:5000", "app", "v1", None)),
    ("localhost/app", ("localhost", "app", None, None)),
    (f"app:v1@{DIGEST}", (None, "app", "v1", DIGEST)),
    ("team/app", (None, "team/app", None, None)),
])
def test_parse_reference(reference, expected):
    assert parse_reference(reference) == expected


def test_notification_bodies_and_headers():
    eg = _pushed("eventgrid")
    body, headers = acr_events.notification(eg, schema="eventgrid")
    assert json.loads(body) == [eg] and headers["aeg-event-type"] == "Notification"
    ce = _pushed("cloudevents")
    body, headers = acr_events.notification(ce, schema="cloudevents")
    assert json.loads(body) == ce and headers["Content-Type"].startswith("application/cloudevents+json")
    body, headers = acr_events.notification([ce, ce], schema="cloudevents")
    assert len(json.loads(body)) == 2 and "cloudevents-batch+json" in headers["Content-Type"]


def test_default_resource_id_names_the_registry():
    assert acr_events.default_registry_resource_id("MyReg.azurecr.io").endswith("/registries/myreg")
    assert acr_events.default_registry_resource_id("localhost:5000").endswith("/registries/localhost5000")
