"""`acr-deploy send-event` against a real DevHost serving the dev host's fixture app."""

from __future__ import annotations

import json

import httpx
import pytest

from devtools.host import DevHost
from devtools.netutil import free_port
from shared.cli import main
from tests.devhost.conftest import FIXTURE_APP, fixture_settings

KEY = "send-event-key"
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def host():
    with DevHost(app_dir=FIXTURE_APP, settings=fixture_settings(), port=0, function_key=KEY,
                 queues=False, timers=False) as running:
        yield running


def _events(host) -> list[dict]:
    return httpx.get(f"{host.url}/api/recorded", headers={"x-functions-key": KEY}, timeout=5).json()["events"]


def test_sends_an_event_grid_schema_image_pushed(host, capsys):
    before = len(_events(host))
    code = main(["send-event", "myreg.azurecr.io/orders-api:1.4.2", "--url", host.url, "--code", KEY,
                 "--function", "on_event", "--digest", DIGEST])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("200 OK")
    got = _events(host)[before:]
    assert len(got) == 1
    event = got[0]
    assert event["class"] == "EventGridEvent"
    assert event["id"] in out  # the printed event id is the delivered one
    assert event["subject"] == "orders-api:1.4.2"
    assert event["topic"].endswith("/registries/myreg")
    assert event["data"]["request"]["host"] == "myreg.azurecr.io"
    assert event["data"]["target"]["digest"] == DIGEST


def test_sends_a_cloudevent_with_url_and_key_from_the_environment(host, capsys, monkeypatch):
    monkeypatch.setenv("ACR_DEPLOY_FUNCTION_URL", host.url)
    monkeypatch.setenv("ACR_DEPLOY_FUNCTION_KEY", KEY)
    before = len(_events(host))
    topic = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/other"
    code = main(["send-event", "web:2.0.0-rc.1", "--schema", "cloudevents", "--function", "on_event",
                 "--registry", "other.azurecr.io", "--registry-resource-id", topic])
    assert code == 0, capsys.readouterr()
    event = _events(host)[before:][0]
    assert event["class"] == "CloudEvent"
    assert event["source"] == topic
    assert event["subject"] == "web:2.0.0-rc.1"
    assert event["data"]["request"]["host"] == "other.azurecr.io"


def test_without_the_key_the_host_says_401_and_the_command_fails(host, capsys, monkeypatch):
    monkeypatch.delenv("ACR_DEPLOY_FUNCTION_KEY", raising=False)
    before = len(_events(host))
    code = main(["send-event", "orders-api:1.4.2", "--url", host.url, "--function", "on_event"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.startswith("401")
    assert "--code" in captured.err
    assert len(_events(host)) == before


def test_unknown_function_is_a_404_hint(host, capsys):
    code = main(["send-event", "orders-api:1.4.2", "--url", host.url, "--code", KEY])  # default on_image_pushed
    assert code == 1
    assert "no Event Grid function 'on_image_pushed'" in capsys.readouterr().err


def test_print_shows_the_delivery_and_sends_nothing(host, capsys):
    before = len(_events(host))
    code = main(["send-event", "orders-api:1.4.2", "--print", "--url", host.url, "--code", KEY,
                 "--function", "on_event"])
    body = json.loads(capsys.readouterr().out)
    assert code == 0
    assert isinstance(body, list) and body[0]["eventType"] == "Microsoft.ContainerRegistry.ImagePushed"
    assert body[0]["data"]["request"]["host"] == "myregistry.azurecr.io"  # the default registry
    assert "actor" not in body[0]["data"]  # as ACR's samples without one
    assert len(_events(host)) == before
    main(["send-event", "orders-api:1.4.2", "--print", "--actor", "ci@example.com"])
    assert json.loads(capsys.readouterr().out)[0]["data"]["actor"] == {"name": "ci@example.com"}


def test_unreachable_url_is_a_clear_error(capsys):
    code = main(["send-event", "orders-api:1.4.2", "--url", f"http://127.0.0.1:{free_port()}",
                 "--timeout", "3"])
    assert code == 1
    assert "could not reach" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["orders-api"], "give a tag"),
    (["orders-api:1", "--digest", "sha256:nothex"], "digest"),
])
def test_bad_arguments_exit_2(args, message, capsys):
    assert main(["send-event", *args, "--print"]) == 2
    assert message in capsys.readouterr().err
