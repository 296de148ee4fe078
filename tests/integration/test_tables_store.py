"""TableStore specifics on Azurite: partitions, round trips and entities per question, the deferred
cross-app index, limits, settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.adapters.tables import TableStore, decode_continuation, encode_continuation, inverted_id
from shared.domain.model import AppState, DeploymentEvent, IgnoredEvent, Phase
from shared.ports import DeploymentQuery
from shared.settings import Settings
from tests.contract.test_store_contract import T0, first_event, make, record


@pytest.fixture
def store(storage_connection_string, table_prefix):
    s = TableStore.from_settings(Settings.from_env({"AzureWebJobsStorage": storage_connection_string,
                                                    "ACR_DEPLOY_TABLE_PREFIX": table_prefix}))
    yield s
    s.delete_table()


def other_process(storage_connection_string, store, **kwargs) -> TableStore:
    """A second store on the same table: what another Functions instance or the CLI sees."""
    return TableStore.from_connection_string(storage_connection_string, store.table_name[:-len("history")], **kwargs)


def partitions(store) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for e in store.table.list_entities(select=["PartitionKey", "RowKey"]):
        found.setdefault(e["PartitionKey"], []).append(e["RowKey"])
    return found


def test_rows_live_in_small_partitions_per_app_day_and_registry(store):
    d = make("orders-api", 1)
    record(store, d)
    store.record_ignored(IgnoredEvent(T0, "rejected", "bad tag", event_id="x1"))
    inv = inverted_id(d.id)
    assert inv.startswith("79759498")  # 2024-05-01, inverted digit by digit: newest day first
    found = partitions(store)
    assert found.pop("x|79759498")[0].startswith("79759498")
    assert found == {
        "a|orders-api": [f"d|{inv}", f"e|{inv}|000001", f"s|{d.target.key}"],
        "t|79759498": [inv],
        "apps": [d.target.key],
    }


def test_each_question_is_one_round_trip_and_transfers_only_what_it_returns(store):
    for n in range(60):
        record(store, make("orders-api", n))
        record(store, make("billing", n))
    before_trips, before_read = store.round_trips, store.entities_read
    page = store.list_deployments(DeploymentQuery(app="orders-api", limit=50))
    assert page.round_trips == 1 and store.round_trips - before_trips == 1
    assert len(page.items) == 50 and store.entities_read - before_read == 50
    assert [d.tag for d in page.items[:2]] == ["1.0.59", "1.0.58"]
    before_read = store.entities_read
    window = store.list_deployments(DeploymentQuery(since=T0, until=T0 + timedelta(seconds=5), limit=50))
    assert window.round_trips == 1 and len(window.items) == 10  # 5 seconds x 2 apps
    assert store.entities_read - before_read == 10
    trips = store.round_trips
    assert len(store.list_apps()) == 2 and store.round_trips - trips == 1
    fresh = TableStore(store.service, store.table_name[:-len("history")], store.counter)
    trips = fresh.round_trips
    assert fresh.get_deployment(page.items[0].id, app="orders-api").id == page.items[0].id
    assert [e.seq for e in fresh.list_events(page.items[0].id)] == [1]
    assert fresh.round_trips - trips == 2  # point read with the app; the events query knows the app now
    other = TableStore(store.service, store.table_name[:-len("history")], store.counter)
    trips = other.round_trips
    assert other.get_deployment(page.items[1].id).id == page.items[1].id
    assert other.round_trips - trips == 2  # without the app: the index row names it, then the record


def test_a_window_spanning_two_days_is_one_query_newest_first_and_pages_across_midnight(store):
    midnight = T0.replace(hour=0) + timedelta(days=1)
    for minutes, app in [(-30, "a"), (-10, "b"), (-1, "c"), (5, "a"), (20, "b"), (-24 * 60 - 5, "c")]:
        record(store, make(app, 0, minutes=minutes + int((midnight - T0).total_seconds() // 60)))
    assert {pk for pk in partitions(store) if pk.startswith("t|")} == {"t|79759497", "t|79759498", "t|79759569"}
    before_read = store.entities_read
    page = store.list_deployments(DeploymentQuery(since=midnight - timedelta(hours=12),
                                                  until=midnight + timedelta(hours=12)))
    assert page.round_trips == 1 and store.entities_read - before_read == 5
    assert [(d.target.app, d.created_at - midnight) for d in page.items] == [
        ("b", timedelta(minutes=20)), ("a", timedelta(minutes=5)), ("c", timedelta(minutes=-1)),
        ("b", timedelta(minutes=-10)), ("a", timedelta(minutes=-30))]
    seen, token = [], None
    for _ in range(10):
        part = store.list_deployments(DeploymentQuery(since=midnight - timedelta(days=2), limit=2,
                                                      continuation=token))
        seen += [d.created_at - midnight for d in part.items]
        token = part.continuation
        if not token:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == 6


def test_create_is_one_transaction_and_the_index_follows_at_once_or_with_the_worker(storage_connection_string, store):
    d = make()
    trips = store.round_trips
    store.create_deployment(d, first_event(d), AppState(target=d.target))
    assert store.round_trips - trips == 3  # the transaction, then the index row and the apps row
    got = store.get_deployment(d.id)
    trips = store.round_trips
    store.save_deployment(got.evolve(phase=Phase.SHIFTING), DeploymentEvent(d.id, T0, Phase.SHIFTING, "x"))
    assert store.round_trips - trips == 2  # no re-read (the event count came with the etag) + index row

    intake = other_process(storage_connection_string, store, defer_index=True)
    reader = other_process(storage_connection_string, store)
    e = make("billing", 3)
    trips = intake.round_trips
    state = intake.create_deployment(e, first_event(e), AppState(target=e.target, pending_deployment_id=e.id))
    assert intake.round_trips - trips == 1  # intake: read state, enqueue, this = 3 round trips
    # The cross-app views of other processes follow the worker's first step ...
    assert reader.get_deployment(e.id) is None
    # ... per-app history is immediate everywhere (and then the reader knows the app).
    assert [x.id for x in reader.list_deployments(DeploymentQuery(app="billing")).items] == [e.id]
    assert reader.get_deployment(e.id, app="billing").phase == Phase.QUEUED
    assert reader.get_deployment(e.id).phase == Phase.QUEUED
    assert e.id not in [x.id for x in reader.list_deployments(DeploymentQuery()).items]
    assert "billing" not in [s.target.app for s in reader.list_apps()]
    worker = other_process(storage_connection_string, store)
    claimed = worker.save_app_state(AppState(**{**state.__dict__, "active_deployment_id": e.id,
                                                "pending_deployment_id": ""}))
    started = worker.get_deployment(e.id, app="billing")
    worker.save_deployment(started.evolve(phase=Phase.CREATING_REVISION),
                           DeploymentEvent(e.id, T0, Phase.CREATING_REVISION, "took the app"))
    assert reader.get_deployment(e.id).phase == Phase.CREATING_REVISION
    (listed,) = [s for s in reader.list_apps() if s.target.app == "billing"]
    assert listed.active_deployment_id == e.id and listed.etag == claimed.etag  # saveable as read
    assert reader.save_app_state(AppState(**{**listed.__dict__, "live_tag": "x"})).etag
    # The intake process reads its own writes, and its late flush never undoes the worker's.
    assert intake.flush_index() == 0  # both rows exist: insert-only
    row = reader.list_deployments(DeploymentQuery(status="creating_revision")).items
    assert [x.id for x in row] == [e.id]
    assert [s.live_tag for s in reader.list_apps() if s.target.app == "billing"] == ["x"]


def test_a_deferring_process_sees_its_own_writes_across_apps(store, storage_connection_string):
    intake = other_process(storage_connection_string, store, defer_index=True)
    d = make("orders-api", 1)
    record(intake, d)
    assert [x.id for x in intake.list_deployments(DeploymentQuery()).items] == [d.id]
    assert [s.target.app for s in intake.list_apps()] == ["orders-api"]
    assert store.get_deployment(d.id).id == d.id  # flushed for everyone


def test_other_process_saves_with_a_foreign_etag_still_number_events_correctly(storage_connection_string, store):
    d = make()
    record(store, d)
    other = other_process(storage_connection_string, store)
    got = other.get_deployment(d.id)
    other.save_deployment(got.evolve(phase=Phase.SHIFTING), DeploymentEvent(d.id, T0, Phase.SHIFTING, "a"))
    stale_here = store.get_deployment(d.id)
    store.save_deployment(stale_here.evolve(phase=Phase.SUCCEEDED), DeploymentEvent(d.id, T0, Phase.SUCCEEDED, "b"))
    assert [e.seq for e in other.list_events(d.id)] == [1, 2, 3]
    assert other.get_deployment(d.id).phase == Phase.SUCCEEDED
    assert [x.phase for x in other.list_deployments(DeploymentQuery()).items] == [Phase.SUCCEEDED]


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
    (indexed,) = store.list_deployments(DeploymentQuery()).items  # the index copy too
    assert indexed.data["excerpt"] == "z" * 100_000


def test_user_input_travels_as_parameters_not_odata(store):
    record(store, make("orders-api", 1))
    hostile = "x' or PartitionKey ne 'h"
    assert store.list_deployments(DeploymentQuery(app=hostile)).items == []
    assert store.list_deployments(DeploymentQuery(app="a/b#c?")).items == []  # not even a valid key
    assert store.list_deployments(DeploymentQuery(environment=hostile)).items == []
    assert store.list_deployments(DeploymentQuery(repository=hostile)).items == []
    assert store.get_deployment("20240501120000-x", app="a/b") is None
    assert store.list_events("20240501120000-x", app=hostile) == []


def test_continuation_tokens_are_opaque_and_checked(store):
    token = encode_continuation(inverted_id("20240501120000-abc"))  # a cross-app listing's token
    assert decode_continuation(token) == inverted_id("20240501120000-abc")
    with pytest.raises(ValueError):
        decode_continuation("not-a-token")
    with pytest.raises(ValueError):  # ... is not one for an app's listing
        store.list_deployments(DeploymentQuery(app="orders-api", continuation=token))
    with pytest.raises(ValueError):  # nor the other way round
        store.list_deployments(DeploymentQuery(continuation=encode_continuation("d|" + inverted_id("20240501120000-abc"))))


def test_ids_sort_newest_first():
    assert inverted_id("20240501120001-aaaa") < inverted_id("20240501120000-ffff")
    assert inverted_id("odd-id").startswith("~")


def test_settings_without_storage_fail_loudly():
    with pytest.raises(ValueError, match="AzureWebJobsStorage"):
        TableStore.from_settings(Settings.from_env({}))


def test_a_worker_elsewhere_finds_a_deployment_the_index_does_not_list_yet(storage_connection_string, store):
    """The start message's recovery path (ensure_recorded) reads the app partition: a worker on
    another instance neither loses the deployment nor records it twice."""
    from shared.domain.model import deployment_from_dict
    from shared.services.rollout.messages import start_message
    from shared.services.intake import ensure_recorded

    intake = other_process(storage_connection_string, store, defer_index=True)
    d = make("orders-api", 4)
    record(intake, d)
    message = start_message(d)
    worker = other_process(storage_connection_string, store, defer_index=True)
    assert worker.get_deployment(message["deployment_id"]) is None  # not indexed yet
    found = ensure_recorded(worker, deployment_from_dict(message["deployment"]))
    assert found is not None and found.id == d.id and found.etag
    assert [e.seq for e in worker.list_events(d.id)] == [1]  # not recorded a second time


def test_the_api_finds_a_deployment_the_index_does_not_list_yet_when_given_its_app(storage_connection_string, store):
    from shared.http_api import HistoryApi

    intake = other_process(storage_connection_string, store, defer_index=True)
    d = make("billing", 7)
    intake.create_deployment(d, first_event(d), AppState(target=d.target, pending_deployment_id=d.id))
    api = HistoryApi(other_process(storage_connection_string, store))

    def get(params):
        return api.handle("get_deployment", method="GET", params=params, route_params={"id": d.id})

    assert get({}).status == 404  # the cross-app index trails intake until the worker's first step
    found = get({"app": "billing"})
    assert found.status == 200 and found.body["id"] == d.id
    assert [e["phase"] for e in found.body["events"]] == ["queued"]
    assert get({"app": "orders-api"}).status == 404
    assert get({"app": "not an app!"}).status == 400
