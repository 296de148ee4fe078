"""The same assertions against MemoryStore and TableStore-on-Azurite, so the fake cannot drift."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.memory import MemoryStore
from shared.domain.model import (
    AppState, Deployment, DeploymentEvent, IgnoredEvent, ImagePush, Phase, PlannedDeployment, Target,
)
from shared.ports import ConcurrencyError, DeploymentQuery

SUB = "00000000-0000-0000-0000-000000000000"
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["memory", "tables", "tables-deferred"])
def store(request):
    """`tables-deferred`: the function app's store (cross-app index rows written after the fact,
    see shared/adapters/tables.py); within one process it must read exactly like the others."""
    if request.param == "memory":
        yield MemoryStore()
        return
    from shared.adapters.tables import TableStore

    conn = request.getfixturevalue("storage_connection_string")
    table_store = TableStore.from_connection_string(conn, request.getfixturevalue("table_prefix"),
                                                    defer_index=request.param == "tables-deferred")
    yield table_store
    table_store.delete_table()


def make(app="orders-api", n=0, *, env="prod", repo=None, tag=None, minutes=0, rg="rg") -> Deployment:
    when = T0 + timedelta(minutes=minutes, seconds=n)
    push = ImagePush(f"ev-{app}-{n}-{minutes}", "/topic", when, "demo.azurecr.io", repo or app,
                     tag or f"1.0.{n}", "sha256:" + format(n + 1, "064x"))
    plan = PlannedDeployment(push, Target(SUB, rg, app), "r1", "rules", environment=env,
                             version_key=f"{n:06d}")
    return Deployment.from_plan(plan, now=when)  # created_at = push time (both stores order by it)


def first_event(d: Deployment) -> DeploymentEvent:
    return DeploymentEvent(d.id, d.created_at, Phase.QUEUED, "queued", {"event_id": d.event_id})


def record(store, d: Deployment) -> AppState:
    state = store.get_app_state(d.target) or AppState(target=d.target)
    state.pending_deployment_id = d.id
    return store.create_deployment(d, first_event(d), state)


def test_create_get_and_story(store):
    d = make()
    state = record(store, d)
    assert state.etag and store.get_app_state(d.target).pending_deployment_id == d.id
    got = store.get_deployment(d.id)
    assert got.etag and got.id == d.id and got.image == d.image and got.phase == Phase.QUEUED
    assert got.created_at == d.created_at and got.target == d.target
    (ev,) = store.list_events(d.id)
    assert (ev.seq, ev.phase, ev.data) == (1, Phase.QUEUED, {"event_id": d.event_id})
    assert store.get_deployment("20240501120000-ffffffffff") is None
    assert store.list_events("20240501120000-ffffffffff") == []


def test_create_is_all_or_nothing_under_races(store):
    d = make()
    record(store, d)
    with pytest.raises(ConcurrencyError):  # same id again
        store.create_deployment(d, first_event(d), store.get_app_state(d.target))
    other = make(n=1)
    stale = AppState(target=d.target, etag=None)  # insert although the row exists
    with pytest.raises(ConcurrencyError):
        store.create_deployment(other, first_event(other), stale)
    assert store.get_deployment(other.id) is None  # nothing half-written
    current = store.get_app_state(d.target)
    store.save_app_state(current)
    with pytest.raises(ConcurrencyError):  # etag now stale
        store.create_deployment(other, first_event(other), current)
    assert store.get_deployment(other.id) is None and store.list_events(other.id) == []


def test_save_deployment_is_conditional_and_appends_events_in_order(store):
    d = make()
    record(store, d)
    got = store.get_deployment(d.id)
    saved = store.save_deployment(got.evolve(phase=Phase.CREATING_REVISION, revision="orders-api--r1"),
                                  DeploymentEvent(d.id, T0, Phase.CREATING_REVISION, "patch sent"))
    assert saved.etag and saved.etag != got.etag
    with pytest.raises(ConcurrencyError):
        store.save_deployment(got.evolve(phase=Phase.FAILED), DeploymentEvent(d.id, T0, Phase.FAILED, "late"))
    saved = store.save_deployment(saved.evolve(phase=Phase.SUCCEEDED, data={"excerpt": "x" * 100}),
                                  DeploymentEvent(d.id, T0, Phase.SHIFTING, "100%"),
                                  DeploymentEvent(d.id, T0, Phase.SUCCEEDED, "done", {"ms": 12}))
    events = store.list_events(d.id)
    assert [(e.seq, e.phase) for e in events] == [
        (1, Phase.QUEUED), (2, Phase.CREATING_REVISION), (3, Phase.SHIFTING), (4, Phase.SUCCEEDED)]
    final = store.get_deployment(d.id)
    assert final.phase == Phase.SUCCEEDED and final.revision == "orders-api--r1"
    assert final.data == {"excerpt": "x" * 100} and final.etag == saved.etag
    unconditional = store.save_deployment(final.evolve(etag=None, reason="note"),
                                          DeploymentEvent(d.id, T0, Phase.SUCCEEDED, "note"))
    assert unconditional.etag and [e.seq for e in store.list_events(d.id)] == [1, 2, 3, 4, 5]


def test_two_workers_with_one_etag_one_wins_and_seqs_never_repeat(store):
    d = make()
    record(store, d)
    got = store.get_deployment(d.id)
    outcomes = []
    barrier = threading.Barrier(4)

    def worker(i):
        barrier.wait()
        try:
            store.save_deployment(got.evolve(step=i), DeploymentEvent(d.id, T0, Phase.SHIFTING, f"w{i}"))
            outcomes.append("won")
        except ConcurrencyError:
            outcomes.append("lost")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
    seqs = [e.seq for e in store.list_events(d.id)]
    assert seqs == [1, 2]


def test_a_deployment_first_saved_without_create_is_recorded(store):
    d = make(app="billing")
    saved = store.save_deployment(d, DeploymentEvent(d.id, T0, Phase.QUEUED, "rollback requested"))
    assert saved.etag and store.get_deployment(d.id).id == d.id
    assert [e.message for e in store.list_events(d.id)] == ["rollback requested"]


def test_app_state_etags(store):
    target = Target(SUB, "rg", "app1")
    created = store.save_app_state(AppState(target=target, live_tag="1.0.0", live_since=T0))
    with pytest.raises(ConcurrencyError):
        store.save_app_state(AppState(target=target))
    updated = store.save_app_state(AppState(**{**created.__dict__, "live_tag": "1.0.1"}))
    with pytest.raises(ConcurrencyError):
        store.save_app_state(created)
    got = store.get_app_state(target)
    assert got.live_tag == "1.0.1" and got.etag == updated.etag and got.live_since == T0
    assert [s.target.app for s in store.list_apps()] == ["app1"]


def test_last_n_of_an_app_newest_first_with_paging_and_filters(store):
    for n in range(7):
        record(store, make("orders-api", n, env="prod" if n % 2 else "staging"))
    for n in range(3):
        record(store, make("orders", n, repo="team/orders"))  # a name prefix of the other app
    page = store.list_deployments(DeploymentQuery(app="orders-api", limit=3))
    assert [d.tag for d in page.items] == ["1.0.6", "1.0.5", "1.0.4"] and page.continuation
    seen = [d.tag for d in page.items]
    for _ in range(5):
        if not page.continuation:
            break
        page = store.list_deployments(DeploymentQuery(app="orders-api", limit=3, continuation=page.continuation))
        seen += [d.tag for d in page.items]
    assert seen == [f"1.0.{n}" for n in range(6, -1, -1)]
    assert [d.tag for d in store.list_deployments(DeploymentQuery(app="orders")).items] == ["1.0.2", "1.0.1", "1.0.0"]
    prod = store.list_deployments(DeploymentQuery(app="orders-api", environment="prod")).items
    assert [d.tag for d in prod] == ["1.0.5", "1.0.3", "1.0.1"]
    assert len(store.list_deployments(DeploymentQuery(repository="team/orders")).items) == 3
    assert len(store.list_deployments(DeploymentQuery(status="active")).items) == 10
    assert store.list_deployments(DeploymentQuery(status="succeeded")).items == []


def test_time_window_across_apps(store):
    for minutes, app in [(0, "a"), (10, "b"), (20, "a"), (30, "c"), (24 * 60 + 5, "b")]:
        record(store, make(app, 0, minutes=minutes))
    window = store.list_deployments(DeploymentQuery(since=T0 + timedelta(minutes=10),
                                                    until=T0 + timedelta(minutes=30)))
    assert [(d.target.app, d.created_at) for d in window.items] == [
        ("a", T0 + timedelta(minutes=20)), ("b", T0 + timedelta(minutes=10))]
    day = store.list_deployments(DeploymentQuery(since=T0, until=T0 + timedelta(hours=24)))
    assert len(day.items) == 4
    assert len(store.list_deployments(DeploymentQuery(app="b", since=T0 + timedelta(hours=1))).items) == 1


def test_ignored_events_are_idempotent_and_listed_newest_first(store):
    items = [IgnoredEvent(T0 + timedelta(minutes=m), outcome, reason, event_id=f"e{m}")
             for m, outcome, reason in [(0, "ignored", "ImageDeleted"), (5, "rejected", "bad tag"),
                                        (9, "skipped", "duplicate")]]
    for item in items + items:
        store.record_ignored(item)
    page = store.list_ignored(T0, T0 + timedelta(hours=1))
    assert [(i.outcome, i.reason) for i in page.items] == [
        ("skipped", "duplicate"), ("rejected", "bad tag"), ("ignored", "ImageDeleted")]
    assert [i.event_id for i in store.list_ignored(T0 + timedelta(minutes=1), T0 + timedelta(minutes=9)).items] == ["e5"]
    assert len(store.list_ignored(T0, T0 + timedelta(hours=1), limit=2).items) == 2


def test_purge_records_deletes_dismissed_events_of_older_days_only(store):
    for days, event_id in ((-3, "old1"), (-2, "old2"), (0, "today"), (1, "newer")):
        store.record_ignored(IgnoredEvent(T0 + timedelta(days=days), "rejected", event_id, event_id=event_id))
    assert store.purge_records(T0 + timedelta(hours=1), limit=1) == 1  # bounded
    assert store.purge_records(T0 + timedelta(hours=1)) == 1
    assert store.purge_records(T0 + timedelta(hours=1)) == 0
    window = (T0 - timedelta(days=10), T0 + timedelta(days=10))
    assert [i.event_id for i in store.list_ignored(*window).items] == ["newer", "today"]


def test_get_deployment_with_the_app_hint_and_without(store):
    d = make("orders-api", 1)
    record(store, d)
    assert store.get_deployment(d.id, app="orders-api").id == d.id
    assert store.get_deployment(d.id, app="Orders-API").id == d.id  # app names are case-insensitive
    assert store.get_deployment(d.id, app="billing").id == d.id  # a wrong hint is only a hint
    assert store.get_deployment(d.id).id == d.id
    assert store.get_deployment("20240501120000-ffffffffff", app="orders-api") is None
    assert [e.seq for e in store.list_events(d.id, app="orders-api")] == [1]


def test_one_app_name_in_two_resource_groups(store):
    staging, prod = make("orders-api", 1, rg="rg-staging"), make("orders-api", 2, rg="rg-prod")
    record(store, staging)
    record(store, prod)
    assert store.get_app_state(staging.target).pending_deployment_id == staging.id
    assert store.get_app_state(prod.target).pending_deployment_id == prod.id
    assert [d.id for d in store.list_deployments(DeploymentQuery(app="orders-api")).items] == [prod.id, staging.id]
    assert sorted(s.target.resource_group for s in store.list_apps()) == ["rg-prod", "rg-staging"]
    assert store.get_deployment(staging.id).target == staging.target


def test_a_window_across_midnight_and_days(store):
    midnight = T0.replace(hour=0) + timedelta(days=1)
    shift = int((midnight - T0).total_seconds() // 60)
    for minutes, app in [(-90, "a"), (-2, "b"), (3, "c"), (60, "a"), (-3 * 24 * 60, "b")]:
        record(store, make(app, 0, minutes=shift + minutes))
    night = store.list_deployments(DeploymentQuery(since=midnight - timedelta(hours=1),
                                                   until=midnight + timedelta(hours=1)))
    assert [(d.target.app, d.created_at - midnight) for d in night.items] == [
        ("c", timedelta(minutes=3)), ("b", timedelta(minutes=-2))]
    assert len(store.list_deployments(DeploymentQuery(until=midnight)).items) == 3
    assert len(store.list_deployments(DeploymentQuery(since=midnight - timedelta(days=2))).items) == 4
    pages, token, seen = 0, None, []
    for _ in range(10):
        page = store.list_deployments(DeploymentQuery(limit=2, continuation=token))
        seen += [d.created_at for d in page.items]
        pages, token = pages + 1, page.continuation
        if not token:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == 5 and pages == 3


def test_apps_read_from_the_list_can_be_saved_with_their_etag(store):
    d = make("orders-api", 1)
    record(store, d)
    (listed,) = store.list_apps()
    assert listed.pending_deployment_id == d.id
    saved = store.save_app_state(AppState(**{**listed.__dict__, "live_tag": "1.0.1"}))
    with pytest.raises(ConcurrencyError):
        store.save_app_state(listed)  # the etag it was listed with is stale now
    assert [s.live_tag for s in store.list_apps()] == ["1.0.1"] and saved.etag


def test_a_deployment_listed_across_apps_saves_with_its_etag(store):
    d = make()
    record(store, d)
    (listed,) = store.list_deployments(DeploymentQuery(status="active")).items
    saved = store.save_deployment(listed.evolve(phase=Phase.FAILED),
                                  DeploymentEvent(d.id, T0, Phase.FAILED, "deadline passed"))
    with pytest.raises(ConcurrencyError):  # what was listed is stale now
        store.save_deployment(listed.evolve(phase=Phase.SUCCEEDED), DeploymentEvent(d.id, T0, Phase.SUCCEEDED, "x"))
    (again,) = store.list_deployments(DeploymentQuery()).items
    assert again.phase == Phase.FAILED and again.etag == saved.etag
    assert [e.seq for e in store.list_events(d.id)] == [1, 2]
    assert store.list_deployments(DeploymentQuery(status="active")).items == []
