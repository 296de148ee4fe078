"""StorageRolloutQueue on Azurite: base64 JSON on the wire (host.json messageEncoding), delays."""

from __future__ import annotations

import base64
import json
import uuid

from azure.storage.queue import QueueClient

from shared.adapters.queues import ROLLOUT_QUEUE, StorageRolloutQueue
from shared.settings import Settings


def test_messages_are_base64_json_like_the_functions_trigger_expects(storage_connection_string):
    name = "q" + uuid.uuid4().hex[:12]
    queue = StorageRolloutQueue.from_connection_string(storage_connection_string, name)
    trips = queue.round_trips
    queue.send({"v": 1, "kind": "advance", "deployment_id": "d1"})
    assert queue.round_trips - trips == 1
    raw = QueueClient.from_connection_string(storage_connection_string, name)  # no decode policy
    (msg,) = list(raw.receive_messages(max_messages=5))
    assert json.loads(base64.b64decode(msg.content)) == {"v": 1, "kind": "advance", "deployment_id": "d1"}
    raw.delete_message(msg)
    raw.delete_queue()


def test_delayed_messages_stay_invisible(storage_connection_string):
    name = "q" + uuid.uuid4().hex[:12]
    queue = StorageRolloutQueue.from_connection_string(storage_connection_string, name)
    queue.send({"n": 1}, delay_s=3600)
    queue.send({"n": 2})
    assert [m for m, _ in queue.receive()] == [{"n": 2}]
    props = queue.client.get_queue_properties()
    assert props.approximate_message_count == 2
    queue.client.delete_queue()


def test_from_settings_uses_the_rollout_queue(storage_connection_string):
    queue = StorageRolloutQueue.from_settings(Settings.from_env({"AzureWebJobsStorage": storage_connection_string}))
    assert queue.client.queue_name == ROLLOUT_QUEUE  # (nothing sent: the queue is shared by the session)
