"""TableStore specifics on Azurite: round trips and entities per question, limits, settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.adapters.tables import TableStore, decode_continuation, encode_continuation, inverted_id
from shared.domain.model import AppState, DeploymentEvent, Phase
from shared.ports import DeploymentQuery
from shared.settings import Settings
from tests.contract.test_store_contract import T0, first_event, make, record


@pytest.fixture
def store(storage_connection_string, table_prefix):
    s = TableStore.from_settings(Settings.from_env({"AzureWebJobsStorage": storage_connection_string,
                                                    "ACR_DEPLOY_TABLE_PREFIX": table_prefix}))
    yield s
    s.delete_table()


def test_each_question_is_one_round_trip_and_transfers_only_what_it_returns(store):
    for n in range(30):
        record(store, make("orders-api", n))
        record(store, make("billing", n))
    before_trips, before_read = store.round_trips, store.entities_read
    page = store.list_deployments(DeploymentQuery(app="orders-api", limit=10))
    assert page.round_trips == 1 and store.round_trips - before_trips == 1
    assert len(page.items) == 10 and store.entities_read - before_read == 10
    window = store.list_deployments(DeploymentQuery(since=T0, until=T0 + timedelta(seconds=5), limit=50))
    assert window.round_trips == 1 and len(window.items) == 10  # 5 seconds x 2 apps
    trips = store.round_trips
    assert len(store.list_apps()) == 2 and store.round_trips - trips == 1
    trips = store.round_trips
    store.get_deployment(page.items[0].id)
    store.list_events(page.items[0].id)
    assert store.round_trips - trips == 2


def test_create_is_one_round_trip_and_a_cached_etag_save_is_one(store):
    d = make()
    trips = store.round_trips
    store.create_deployment(d, first_event(d), AppState(target=d.target))
    assert store.round_trips - trips == 1
    got = store.get_deployment(d.id)
    trips = store.round_trips
    store.save_deployment(got.evolve(phase=Phase.SHIFTING), DeploymentEvent(d.id, T0, Phase.SHIFTING, "x"))
    assert store.round_trips - trips == 1  # no re-read: the event count came with the etag


def test_other_process_saves_with_a_foreign_etag_still_number_events_correctly(storage_connection_string, store):
    d = make()
    record(store, d)
    other = TableStore.from_connection_string(storage_connection_string, store.table_name[:-len("history")])
    got = other.get_deployment(d.id)
    other.save_deployment(got.evolve(phase=Phase.SHIFTING), DeploymentEvent(d.id, T0, Phase.SHIFTING, "a"))
    stale_here = store.get_deployment(d.id)
    store.save_deployment(stale_here.evolve(phase=Phase.SUCCEEDED), DeploymentEvent(d.id, T0, Phase.SUCCEEDED, "b"))
    assert [e.seq for e in other.list_events(d.id)] == [1, 2, 3]


def test_huge_texts_are_truncated_not_rejected(store):
    d = make()
    record(store, d)
    got = store.get_deployment(d.id)
    big = got.evolve(reason="r" * 100_000, data={"excerpt": "<html>" + "x" * 400_000})
    store.save_deployment(big, DeploymentEvent(d.id, T0, Phase.FAILED, "m" * 50_000, {"body": "y" * 90_000}))
    back = store.get_deployment(d.id)
    assert back.reason.startswith("rrr") and len(back.reason) <= 2_000
    assert len(back.data["excerpt"]) <= 1_000
    last = store.list_events(d.id)[-1]
    assert len(last.message) <= 4_000 and len(last.data["body"]) <= 500
    medium = back.evolve(data={"excerpt": "z" * 100_000})  # fits in chunks: kept whole
    store.save_deployment(medium)
    assert store.get_deployment(d.id).data["excerpt"] == "z" * 100_000


def test_user_input_travels_as_parameters_not_odata(store):
    record(store, make("orders-api", 1))
    hostile = "x' or PartitionKey ne 'h"
    assert store.list_deployments(DeploymentQuery(app=hostile)).items == []
    assert store.list_deployments(DeploymentQuery(environment=hostile)).items == []
    assert store.list_deployments(DeploymentQuery(repository=hostile)).items == []


def test_continuation_tokens_are_opaque_and_checked(store):
    token = encode_continuation("i|" + inverted_id("20240501120000-abc"))
    assert decode_continuation(token).startswith("i|")
    with pytest.raises(ValueError):
        decode_continuation("not-a-token")
    with pytest.raises(ValueError):  # a token for another app's listing
        store.list_deployments(DeploymentQuery(app="orders-api", continuation=token))


def test_ids_sort_newest_first():
    assert inverted_id("20240501120001-aaaa") < inverted_id("20240501120000-ffff")
    assert inverted_id("odd-id").startswith("~")


def test_settings_without_storage_fail_loudly():
    with pytest.raises(ValueError, match="AzureWebJobsStorage"):
        TableStore.from_settings(Settings.from_env({}))
