"""The Event Grid webhook of a real DevHost: handshakes (both schemas) and notifications."""

from __future__ import annotations

import json
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "eventgrid"  # the published samples

WEBHOOK = "/runtime/webhooks/EventGrid"
NOTIFY = {"aeg-event-type": "Notification"}


def _eventgrid_event(**data) -> dict:
    return {
        "id": "831e1650-001e-001b-66ab-eeb76e069631",
        "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/demo",
        "subject": "aci-helloworld:v1",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed",
        "eventTime": "2018-04-25T21:39:47.6549614Z",
        "data": {"action": "push", "target": {"repository": "aci-helloworld", "tag": "v1"}, **data},
        "dataVersion": "2.0",
        "metadataVersion": "1",
    }


def _cloudevent(event_id: str = "ce-1", **data) -> dict:
    return {
        "id": event_id,
        "source": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/demo",
        "subject": "aci-helloworld:v1",
        "type": "Microsoft.ContainerRegistry.ImagePushed",
        "time": "2018-04-25T21:39:47.6549614Z",
        "data": {"action": "push", **data},
        "specversion": "1.0",
    }


def _url(function="on_event", code="test-key-123") -> str:
    url = f"{WEBHOOK}?functionName={function}"
    return f"{url}&code={code}" if code else url


def _recorded(client) -> list[dict]:
    return client.get("/api/recorded", headers={"x-functions-key": "test-key-123"}).json()["events"]


def test_subscription_validation_answers_the_code_without_invoking(client):
    before = len(_recorded(client))
    body = json.loads((REFERENCE / "eventgrid-SubscriptionValidationEvent.docs.json").read_text())
    response = client.post(_url(), json=body, headers={"aeg-event-type": "SubscriptionValidation"})
    assert response.status_code == 200
    expected = json.loads((REFERENCE / "eventgrid-SubscriptionValidationResponse.docs.json").read_text())
    assert response.json() == expected
    assert len(_recorded(client)) == before


def test_validation_without_a_code_is_400(client):
    response = client.post(_url(), json=[_eventgrid_event()], headers={"aeg-event-type": "SubscriptionValidation"})
    assert response.status_code == 400


VALIDATE = {"aeg-event-type": "SubscriptionValidation"}


def _validation_event(data) -> list[dict]:
    return [{"id": "v1", "topic": "t", "subject": "", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
             "eventTime": "2018-01-25T22:12:19.4556811Z", "dataVersion": "1", "data": data}]


def test_validation_event_with_data_that_is_not_an_object_is_400(client):
    for data in (["512d38b6-c7b8-40c8-89fe-f46f9e9622b6"], "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", 7):
        response = client.post(_url(), json=_validation_event(data), headers=VALIDATE)
        assert response.status_code == 400 and "data must be an object" in response.json()["error"]


def test_only_a_validation_code_of_the_documented_shape_is_echoed(client):
    for code in ("<script>alert(1)</script>", "x" * 5000, 12345, {"a": 1}):
        response = client.post(_url(), json=_validation_event({"validationCode": code}), headers=VALIDATE)
        assert response.status_code == 400 and "GUID" in response.json()["error"]
        assert "alert(1)" not in response.text
    good = "512D38B6-C7B8-40C8-89FE-F46F9E9622B6"
    response = client.post(_url(), json=_validation_event({"validationCode": good}), headers=VALIDATE)
    assert response.status_code == 200 and response.json() == {"validationResponse": good}


def test_deeply_nested_json_is_400_for_every_event_type(client):
    deep = ("[" * 200_000 + "]" * 200_000).encode()
    for headers in (VALIDATE, NOTIFY):
        response = client.post(_url(), content=deep, headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == 400 and "nested too deeply" in response.json()["error"]


def test_cloudevents_abuse_protection_handshake(client):
    response = client.options(_url(), headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert response.status_code == 200
    assert response.headers["webhook-allowed-origin"] == "eventgrid.azure.net"


def test_webhook_needs_the_system_key(client):
    assert client.post(_url(code=None), json=[_eventgrid_event()], headers=NOTIFY).status_code == 401
    assert client.post(_url(code="nope"), json=[_eventgrid_event()], headers=NOTIFY).status_code == 401
    assert client.options(_url(code=None), headers={"WebHook-Request-Origin": "x"}).status_code == 401
    ok = client.post(_url(code=None), json=[_eventgrid_event()],
                     headers={**NOTIFY, "x-functions-key": "test-key-123"})
    assert ok.status_code == 200


def test_unknown_function_and_non_eventgrid_function_are_404(client):
    assert client.post(_url(function="nope"), json=[], headers=NOTIFY).status_code == 404
    assert client.post(_url(function="echo"), json=[], headers=NOTIFY).status_code == 404


def test_missing_event_type_header_and_bad_json_are_400(client):
    assert client.post(_url(), json=[_eventgrid_event()]).status_code == 400
    response = client.post(_url(), content=b"{not json", headers=NOTIFY)
    assert response.status_code == 400
    assert client.post(_url(), json=[], headers=NOTIFY).status_code == 400


def test_eventgrid_schema_notification_builds_eventgrid_events(client):
    before = len(_recorded(client))
    events = [_eventgrid_event(), {**_eventgrid_event(), "id": "second-id", "subject": "aci-helloworld:v2"}]
    response = client.post(_url(), json=events, headers=NOTIFY)
    assert response.status_code == 200
    got = _recorded(client)[before:]
    assert [e["id"] for e in got] == ["831e1650-001e-001b-66ab-eeb76e069631", "second-id"]
    first = got[0]
    assert first["class"] == "EventGridEvent"
    assert first["type"] == "Microsoft.ContainerRegistry.ImagePushed"
    assert first["topic"].endswith("/registries/demo")
    assert first["data_version"] == "2.0"
    # seven fractional digits, trimmed to Python's six, in UTC: the worker's converter did this
    assert first["time"] == "2018-04-25T21:39:47.654961+00:00"
    assert first["data"]["target"] == {"repository": "aci-helloworld", "tag": "v1"}


def test_single_cloudevent_and_batch_build_cloudevents(client):
    before = len(_recorded(client))
    single = client.post(_url(), content=json.dumps(_cloudevent("ce-1")),
                         headers={**NOTIFY, "Content-Type": "application/cloudevents+json; charset=utf-8"})
    batch = client.post(_url(), content=json.dumps([_cloudevent("ce-2"), _cloudevent("ce-3")]),
                        headers={**NOTIFY, "Content-Type": "application/cloudevents-batch+json; charset=utf-8"})
    assert (single.status_code, batch.status_code) == (200, 200)
    got = _recorded(client)[before:]
    assert [(e["class"], e["id"]) for e in got] == [("CloudEvent", "ce-1"), ("CloudEvent", "ce-2"), ("CloudEvent", "ce-3")]
    assert got[0]["source"].endswith("/registries/demo")
    assert got[0]["time"] == "2018-04-25T21:39:47.654961+00:00"


def test_a_failing_invocation_makes_the_delivery_500_but_every_event_runs(client):
    before = len(_recorded(client))
    events = [{**_eventgrid_event(fail=True), "id": "f-1"}, {**_eventgrid_event(), "id": "f-2"}]
    response = client.post(_url(), json=events, headers=NOTIFY)
    assert response.status_code == 500
    assert [e["id"] for e in _recorded(client)[before:]] == ["f-1", "f-2"]


def test_subscription_deletion_is_acknowledged(client):
    assert client.post(_url(), json=[], headers={"aeg-event-type": "SubscriptionDeletion"}).status_code == 202
