"""Queue triggers against Azurite through a real DevHost (fixture app's host.json: batchSize 4,
maxDequeueCount 3, visibilityTimeout 0, maxPollingInterval 0.5 s, base64)."""

from __future__ import annotations

import base64
import json
import shutil
import time

import httpx
import pytest
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devtools.host import DevHost
from tests.devhost.conftest import FIXTURE_APP, fixture_settings

KEY = "queue-key"


def _wait_for(predicate, timeout_s: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def queue_host(storage_connection_string):
    settings = fixture_settings(storage_connection_string)
    host = DevHost(app_dir=FIXTURE_APP, settings=settings, port=0, function_key=KEY, timers=False)
    queue = QueueClient.from_connection_string(
        storage_connection_string, settings["FIXTURE_QUEUE"], message_encode_policy=TextBase64EncodePolicy()
    )
    queue.create_queue()
    host.start()
    host.test_queue = queue  # what the tests send to (base64, as host.json expects)
    host.test_conn = storage_connection_string
    yield host
    host.stop()


def _recorded(host) -> list[dict]:
    return httpx.get(f"{host.url}/api/recorded", headers={"x-functions-key": KEY}, timeout=10).json()["queue"]


def _runs_of(host, marker: str) -> list[dict]:
    return [r for r in _recorded(host) if marker in r["body"]]


def test_message_is_processed_decoded_and_deleted(queue_host):
    queue_host.test_queue.send_message(json.dumps({"marker": "ok-1"}))
    runs = _wait_for(lambda: _runs_of(queue_host, "ok-1"), what="the message to run")
    assert runs[0]["class"] == "QueueMessage"
    assert json.loads(runs[0]["body"]) == {"marker": "ok-1"}  # base64 decoded by the host
    assert runs[0]["dequeue_count"] == 1
    _wait_for(lambda: queue_host.test_queue.get_queue_properties().approximate_message_count == 0,
              what="the queue to empty")
    time.sleep(0.6)  # past a polling interval: no second run of a deleted message
    assert len(_runs_of(queue_host, "ok-1")) == 1


def test_failure_is_retried_with_a_higher_dequeue_count(queue_host):
    queue_host.test_queue.send_message(json.dumps({"marker": "retry-1", "fail_until": 2}))
    runs = _wait_for(lambda: (r := _runs_of(queue_host, "retry-1")) and len(r) >= 2 and r,
                     what="a retry")
    assert [r["dequeue_count"] for r in runs[:2]] == [1, 2]
    assert all(r["id"] == runs[0]["id"] for r in runs)  # the same message, redelivered
    time.sleep(0.6)
    assert len(_runs_of(queue_host, "retry-1")) == 2  # succeeded on the second run, then deleted


def test_poison_after_max_dequeue_count(queue_host):
    poison = QueueClient.from_connection_string(queue_host.test_conn, queue_host.test_queue.queue_name + "-poison")
    body = json.dumps({"marker": "poison-1", "fail_always": True})
    queue_host.test_queue.send_message(body)
    _wait_for(lambda: len(_runs_of(queue_host, "poison-1")) >= 3, what="three failed runs")
    moved = _wait_for(lambda: [m for m in poison.peek_messages(max_messages=32)
                               if base64.b64decode(m.content).decode() == body], what="the poison message")
    assert len(moved) == 1  # copied unchanged (still base64, like the host does)
    time.sleep(0.6)
    assert [r["dequeue_count"] for r in _runs_of(queue_host, "poison-1")] == [1, 2, 3]


def test_message_that_is_not_base64_goes_to_poison_without_a_run(queue_host):
    raw = QueueClient.from_connection_string(queue_host.test_conn, queue_host.test_queue.queue_name)
    raw.send_message("this is not base64 {marker: raw-1}")
    poison = QueueClient.from_connection_string(queue_host.test_conn, queue_host.test_queue.queue_name + "-poison")
    _wait_for(lambda: [m for m in poison.peek_messages(max_messages=32) if "raw-1" in m.content],
              what="the undecodable message in poison")
    assert _runs_of(queue_host, "raw-1") == []


def test_messages_run_concurrently_but_bounded_by_batch_size_plus_threshold(queue_host):
    for i in range(10):
        queue_host.test_queue.send_message(json.dumps({"marker": f"batch-{i}", "sleep_s": 0.4}))
    runs = _wait_for(lambda: (r := [x for x in _recorded(queue_host) if "batch-" in x["body"]]) and len(r) == 10 and r,
                     what="ten messages")
    # Highest number of runs overlapping in time.
    edges = sorted([(r["started"], 1) for r in runs] + [(r["ended"], -1) for r in runs])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert 2 <= peak <= 4 + 2  # batchSize 4 + newBatchThreshold 2


def test_encoding_none_delivers_the_stored_text(tmp_path, storage_connection_string):
    app = tmp_path / "app"
    shutil.copytree(FIXTURE_APP, app)
    host_json = json.loads((app / "host.json").read_text())
    host_json["extensions"]["queues"]["messageEncoding"] = "none"
    (app / "host.json").write_text(json.dumps(host_json))
    settings = fixture_settings(storage_connection_string)
    queue = QueueClient.from_connection_string(storage_connection_string, settings["FIXTURE_QUEUE"])
    queue.create_queue()
    queue.send_message('{"marker": "plain-1"}')
    with DevHost(app_dir=app, settings=settings, port=0, function_key=KEY, timers=False) as host:
        runs = _wait_for(lambda: _runs_of(host, "plain-1"), what="the plain message")
    assert runs[0]["body"] == '{"marker": "plain-1"}'
