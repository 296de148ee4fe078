"""Intake throughput and history queries at 100,000 recorded deployments, on a private Azurite.

    python -m benchmarks.intake_history [--deployments 100000] [--apps 200] [--days 30]
        [--events 600] [--workers 8] [--workdir DIR] [--profile]

Prints: seeding time; intake events/s through `function_app.on_image_pushed` (real
func.EventGridEvent objects, the trigger's code path, wired like the function app: the store
defers the cross-app index to the worker) on 1 thread and on a pool like the Functions host's, with
storage round trips per accepted event, then what completing the deferred index costs; "last 50 of
one app", "a 24 h window across apps", one story and "what runs where": round trips, entities
transferred, latency p50/p95. Figures only, no asserts.

Seeding writes per-partition batch transactions (100 rows) from several threads: first every app
partition, then every day partition of the index (about 3 minutes for 100,000 on a 2-core box, so
the default keeps Azurite in memory). With --workdir, Azurite keeps its data there and a later run
with the same --workdir reuses the seeded table instead of seeding again; note that Azurite then
saves its whole table database to disk every few seconds, which slows everything it serves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

SUB = "00000000-0000-0000-0000-000000000000"
HOST = "bench.azurecr.io"
TOPIC = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/bench"
END = datetime(2024, 6, 1, tzinfo=timezone.utc)


class Shape:
    """Which seeded deployment is which: n -> app (round robin) and time (evenly over `days`)."""

    def __init__(self, total: int, apps: int, days: int) -> None:
        self.total, self.apps, self.days = total, apps, days

    def app(self, n: int) -> str:
        return f"app-{n % self.apps:03d}"

    def when(self, n: int) -> datetime:
        span = self.days * 86400
        return (END - timedelta(seconds=span * (self.total - n) / self.total)).replace(microsecond=0)

    def item(self, n: int):
        from shared.domain.model import Deployment, DeploymentEvent, ImagePush, Phase, PlannedDeployment, Target

        app, when = self.app(n), self.when(n)
        push = ImagePush(f"seed-{n}", TOPIC, when, HOST, app, f"1.{n // 1000}.{n % 1000}",
                         "sha256:" + hashlib.sha256(str(n).encode()).hexdigest(), actor="seed")
        plan = PlannedDeployment(push, Target(SUB, "rg", app), "r1", "rules", environment="prod",
                                 version_key=f"{n:09d}")
        d = Deployment.from_plan(plan, now=when).evolve(phase=Phase.SUCCEEDED, reason="seeded",
                                                        revision=f"{app}--s{n}")
        # Every 10th deployment gets a story row (the measured questions never read events).
        return d, (DeploymentEvent(d.id, when, Phase.SUCCEEDED, "seeded") if n % 10 == 0 else None)


def seed(store, shape: Shape, workers: int) -> tuple[int, float, int]:
    """App partitions (one task per app), then index day partitions (one task per day)."""
    started = time.monotonic()
    trips0 = store.round_trips
    from azure.core.exceptions import ServiceResponseError

    from benchmarks.seeding import seed_rows

    def retrying(fn) -> int:
        for attempt in range(3):  # Azurite under load may drop a connection; upserts are idempotent
            try:
                return fn()
            except ServiceResponseError:
                if attempt == 2:
                    raise
                time.sleep(1)
        return 0

    def per_app(a: int) -> int:
        return retrying(lambda: seed_rows(store, (shape.item(n) for n in range(a, shape.total, shape.apps)),
                                           rows="app"))

    days: dict[str, list[int]] = {}
    for n in range(shape.total):
        days.setdefault(f"{shape.when(n):%Y%m%d}", []).append(n)

    def per_day(ns: list[int]) -> int:
        return retrying(lambda: seed_rows(store, (shape.item(n) for n in ns), rows="index"))

    with ThreadPoolExecutor(workers) as pool:
        count = sum(pool.map(per_app, range(shape.apps)))
        indexed = sum(pool.map(per_day, days.values()))
    assert count == indexed == shape.total
    _seed_apps(store, shape)
    return count, time.monotonic() - started, store.round_trips - trips0


def _seed_apps(store, shape: Shape) -> None:
    """What is live on each app: its newest seeded deployment (state row + apps registry row)."""
    from shared.domain.model import AppState

    for a in range(shape.apps):
        newest = max(range(a, shape.total, shape.apps))
        d, _ = shape.item(newest)
        store.save_app_state(AppState(
            target=d.target, live_deployment_id=d.id, live_revision=d.revision, live_image=d.image,
            live_digest=d.digest, live_tag=d.tag, live_since=d.created_at, environment="prod",
            last_deployment_id=d.id, last_phase="succeeded", updated_at=d.created_at))


def _event(n: int, apps: int, app: str | None = None):
    import azure.functions as func

    app = app or f"app-{n % apps:03d}"
    tag = f"9.{n}.0"
    now = datetime.now(timezone.utc)
    return func.EventGridEvent(
        id=str(uuid.uuid4()), topic=TOPIC, subject=f"{app}:{tag}",
        event_type="Microsoft.ContainerRegistry.ImagePushed", event_time=now, data_version="1.0",
        data={"id": str(uuid.uuid4()), "timestamp": now.isoformat(), "action": "push",
              "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
                         "digest": "sha256:" + hashlib.sha256(f"push-{n}-{uuid.uuid4()}".encode()).hexdigest(),
                         "length": 1, "repository": app, "tag": tag},
              "request": {"id": "r", "host": HOST, "method": "PUT", "useragent": "bench"},
              "actor": {"name": "bench"}})


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _measure(name: str, fn, store, repeat: int) -> None:
    latencies, trips, read, returned = [], [], [], []
    for _ in range(repeat):
        before_read = store.entities_read
        t0 = time.perf_counter()
        page = fn()
        latencies.append((time.perf_counter() - t0) * 1000)
        trips.append(page.round_trips)
        read.append(store.entities_read - before_read)
        returned.append(len(page.items))
    print(f"{name}: returned {returned[-1]} | round trips {max(trips)} | entities transferred "
          f"{max(read)} | latency p50 {statistics.median(latencies):.1f} ms, p95 {_pct(latencies, 95):.1f} ms",
          flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.intake_history")
    parser.add_argument("--deployments", type=int, default=100_000)
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--workers", type=int, default=8, help="intake pool (the host's concurrency)")
    parser.add_argument("--seed-workers", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--workdir", default=None, help="persist Azurite's data here and reuse it")
    parser.add_argument("--profile", action="store_true", help="cProfile the single-thread intake run")
    args = parser.parse_args(argv)

    import function_app
    from devtools.azurite import Azurite
    from shared.adapters.queues import StorageRolloutQueue
    from shared.adapters.tables import TableStore
    from shared.bootstrap import Container, reset_container
    from shared.ports import DeploymentQuery
    from shared.settings import Settings

    shape = Shape(args.deployments, args.apps, args.days)
    marker = Path(args.workdir) / "acr-deploy-bench.json" if args.workdir else None
    wanted = {"deployments": shape.total, "apps": shape.apps, "days": shape.days}
    reuse = marker is not None and marker.exists() and json.loads(marker.read_text()).get("shape") == wanted
    azurite = Azurite(workdir=args.workdir).start()
    try:
        prefix = json.loads(marker.read_text())["prefix"] if reuse else "bench" + uuid.uuid4().hex[:6]
        store = TableStore.from_connection_string(azurite.connection_string, prefix)
        if reuse:
            print(f"reusing the {shape.total:,} deployments seeded in {args.workdir} (table {prefix}history)")
        else:
            count, seconds, trips = seed(store, shape, args.seed_workers)
            rows = count * 2 + count // 10 + shape.apps * 2
            print(f"seeded {count:,} deployments over {shape.apps} apps and {shape.days} days ({rows:,} rows) "
                  f"in {seconds:.1f} s ({count / max(seconds, 1e-9):,.0f} deployments/s; {trips:,} batch "
                  f"transactions from {args.seed_workers} threads)", flush=True)
            if marker is not None:
                marker.write_text(json.dumps({"shape": wanted, "prefix": prefix}))

        # ---- intake through the trigger's code path, wired like the function app
        settings = Settings.from_env({
            "AzureWebJobsStorage": azurite.connection_string, "ACR_DEPLOY_TABLE_PREFIX": prefix,
            "ACR_DEPLOY_REGISTRIES": HOST, "ACR_DEPLOY_SUBSCRIPTION_ID": SUB,
            "ACR_DEPLOY_RESOURCE_GROUP": "rg", "ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS": "-",
        })
        container = Container(settings)
        container.__dict__["container_apps"] = None  # tag discovery off: no ARM client needed
        container.__dict__["queue"] = StorageRolloutQueue.from_connection_string(
            azurite.connection_string, "bench" + uuid.uuid4().hex[:8])
        reset_container(container)
        on_image_pushed = function_app.on_image_pushed._function.get_user_function()
        events = [_event(n, shape.apps) for n in range(args.events)]
        on_image_pushed(_event(10_000_000, shape.apps, app="warm-up"))  # rules loaded, clients connected
        intake_store = container.store
        for label, workers, batch in (("1 thread", 1, events[: args.events // 3]),
                                      (f"{args.workers} threads", args.workers, events[args.events // 3:])):
            store_before, queue_before = intake_store.round_trips, container.queue.round_trips
            t0 = time.perf_counter()
            if workers == 1 and args.profile:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                profiler.enable()
                for event in batch:
                    on_image_pushed(event)
                profiler.disable()
            else:
                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(on_image_pushed, batch))
            elapsed = time.perf_counter() - t0
            table = (intake_store.round_trips - store_before) / len(batch)
            queue = (container.queue.round_trips - queue_before) / len(batch)
            print(f"intake ({label}): {len(batch)} events in {elapsed:.2f} s = {len(batch) / elapsed:,.0f} "
                  f"events/s; storage round trips per accepted event {table + queue:.2f} "
                  f"(table {table:.2f} + queue {queue:.2f})", flush=True)
            if workers == 1 and args.profile:
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        trips, t0 = intake_store.round_trips, time.perf_counter()
        rows = intake_store.flush_index()
        print(f"completing the deferred cross-app index (normally the worker's first step): {rows} rows "
              f"in {intake_store.round_trips - trips} batch round trips, {(time.perf_counter() - t0) * 1000:.0f} ms",
              flush=True)
        reset_container(None)

        # ---- the release managers' questions
        _measure("last 50 of one app", lambda: store.list_deployments(DeploymentQuery(app="app-007", limit=50)),
                 store, args.repeat)
        day = END - timedelta(hours=5)  # a 24 h window inside the seeded month, across midnight
        _measure("24 h window across apps, first page of 200",
                 lambda: store.list_deployments(DeploymentQuery(since=day - timedelta(days=1), until=day, limit=200)),
                 store, args.repeat)

        def whole_window():
            from shared.ports import Page

            items, trips, token = [], 0, None
            for _ in range(100):  # bounded
                page = store.list_deployments(DeploymentQuery(since=day - timedelta(days=1), until=day,
                                                              limit=1000, continuation=token))
                items += page.items
                trips += page.round_trips
                token = page.continuation
                if not token:
                    break
            return Page(items, None, trips)

        _measure("24 h window across apps, every deployment in it", whole_window, store, max(3, args.repeat // 10))
        story_id = store.list_deployments(DeploymentQuery(app="app-003", limit=1)).items[0].id
        _measure("one deployment's story by id (get + events)", lambda: _story(store, story_id, None), store,
                 args.repeat)
        _measure("one deployment's story by id and app", lambda: _story(store, story_id, "app-003"), store,
                 args.repeat)
        _measure("what runs where (list_apps)", lambda: _apps(store), store, args.repeat)
    finally:
        azurite.stop()


def _story(store, deployment_id: str, app: str | None):
    from shared.adapters.tables import TableStore
    from shared.ports import Page

    fresh = TableStore(store.service, store.table_name[:-len("history")], store.counter)  # nothing cached
    before, read = store.round_trips, fresh.entities_read
    d = fresh.get_deployment(deployment_id, app=app)
    events = fresh.list_events(deployment_id)
    store.entities_read += fresh.entities_read - read
    return Page([d, *events], None, store.round_trips - before)


def _apps(store):
    from shared.ports import Page

    before = store.round_trips
    apps = store.list_apps()
    return Page(apps, None, store.round_trips - before)


if __name__ == "__main__":
    main()
