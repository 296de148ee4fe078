"""Retention on Azurite: backdated rows of the record-only partitions (dismissed events, the
cross-app day index) are purged in bounded batches; a deployment's own rows never are, and the
index row of a deployment the apps registry points to stays listable."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.tables import TableStore
from shared.domain.model import (
    AppState, Deployment, DeploymentEvent, IgnoredEvent, ImagePush, Phase, PlannedDeployment, Target,
)
from shared.ports import DeploymentQuery
from shared.services.retention import RetentionPurger

NOW = datetime(2024, 9, 1, 12, 0, tzinfo=timezone.utc)
EVER = (datetime(2000, 1, 1, tzinfo=timezone.utc), NOW + timedelta(days=1))


@pytest.fixture
def store(azurite, table_prefix):
    s = TableStore.from_connection_string(azurite.connection_string, table_prefix)
    yield s
    s.delete_table()


def deploy(store: TableStore, app: str, days_ago: float, live: bool) -> Deployment:
    at = NOW - timedelta(days=days_ago)
    push = ImagePush(f"e-{app}", "/t", at, "demo.azurecr.io", app, "1.0.0", "sha256:" + "b" * 64)
    d = Deployment.from_plan(PlannedDeployment(push, Target("s", "rg", app), "r", "rules", "prod"), now=at)
    d = d.evolve(phase=Phase.SUCCEEDED)
    state = store.create_deployment(d, DeploymentEvent(d.id, at, Phase.QUEUED, "queued"),
                                    AppState(target=d.target, environment="prod"))
    if live:
        store.save_app_state(replace(state, live_deployment_id=d.id, last_deployment_id=d.id))
    return d


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_old_records_are_purged_in_bounded_batches_and_live_deployments_stay(store):
    for n in range(5):
        store.record_ignored(IgnoredEvent(NOW - timedelta(days=100 + n), "rejected", f"old {n}", event_id=f"o{n}"))
    store.record_ignored(IgnoredEvent(NOW - timedelta(days=10), "ignored", "recent", event_id="r1"))
    old_live = deploy(store, "old-live", 200, live=True)
    old_gone = deploy(store, "old-superseded", 150, live=False)
    recent = deploy(store, "recent", 5, live=True)

    ticks = Ticks()
    purger = RetentionPurger(store, 90, batch=2, interval_s=3600, clock=lambda: NOW, monotonic=ticks)
    runs = []
    for _ in range(10):  # bounded: 6 doomed rows, 2 per run
        runs.append(purger.purge())
        if runs[-1] < 2:
            break
    assert runs == [2, 2, 2, 0]  # a full batch means "backlog": the next sweep goes on at once
    ticks.now += 60
    store.record_ignored(IgnoredEvent(NOW - timedelta(days=120), "rejected", "late", event_id="late"))
    assert purger.purge() == 0  # nothing full last time: not due again before the interval
    ticks.now += 3600
    assert purger.purge() == 1

    assert [i.reason for i in store.list_ignored(*EVER, limit=100).items] == ["recent"]
    listed = [d.id for d in store.list_deployments(DeploymentQuery(since=EVER[0], limit=100)).items]
    assert listed == [recent.id, old_live.id]  # the live one stays listable across apps
    # A deployment's own rows (its app partition) are never purged, live or not.
    for d in (old_live, old_gone, recent):
        assert store.get_deployment(d.id, app=d.target.app).id == d.id
        assert [e.phase for e in store.list_events(d.id, app=d.target.app)] == [Phase.QUEUED]
    assert [d.id for d in store.list_deployments(DeploymentQuery(app="old-superseded")).items] == [old_gone.id]
