"""Intake throughput and history queries at 100,000 recorded deployments, on a private Azurite.

    python -m benchmarks.intake_history [--deployments 100000] [--events 600] [--workers 8]

Prints: seeding time; intake events/s through `function_app.on_image_pushed` (real
func.EventGridEvent objects, the trigger's code path) and storage round trips per accepted event;
"last 50 of one app" and "a 24 h window across apps": round trips, entities transferred, latency
p50/p95. Figures only, no asserts. Seeding is bounded by --seed-budget seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

SUB = "00000000-0000-0000-0000-000000000000"
HOST = "bench.azurecr.io"
TOPIC = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/bench"
APPS = 50
DAYS = 30
END = datetime(2024, 6, 1, tzinfo=timezone.utc)


def _seed_items(start: int, stop: int, total: int):
    from shared.domain.model import Deployment, DeploymentEvent, ImagePush, Phase, PlannedDeployment, Target

    span = DAYS * 86400
    for n in range(start, stop):
        app = f"app-{n % APPS:02d}"
        when = END - timedelta(seconds=span * (total - n) / total)
        push = ImagePush(f"seed-{n}", TOPIC, when, HOST, app, f"1.{n // 1000}.{n % 1000}",
                         "sha256:" + hashlib.sha256(str(n).encode()).hexdigest(), actor="seed")
        plan = PlannedDeployment(push, Target(SUB, "rg", app), "r1", "rules", environment="prod",
                                 version_key=f"{n:09d}")
        d = Deployment.from_plan(plan, now=when).evolve(phase=Phase.SUCCEEDED, reason="seeded")
        # Azurite spends ~1 ms per row in a transaction: every 10th deployment gets a story row,
        # the rest their two index rows only (the questions measured here never read events).
        yield d, (DeploymentEvent(d.id, when, Phase.SUCCEEDED, "seeded") if n % 10 == 0 else None)


def seed(store, total: int, workers: int, budget_s: float) -> tuple[int, float]:
    """Batch transactions from `workers` threads; stops at `budget_s` (bounded)."""
    started = time.monotonic()
    chunk = 960  # transactions of <= 99 rows, 20 of them per task
    done = [0]
    lock = threading.Lock()

    def work(start: int) -> None:
        if time.monotonic() - started > budget_s:
            return
        from azure.core.exceptions import ServiceResponseError

        for attempt in range(3):  # Azurite under load may drop a connection; upserts are idempotent
            try:
                written = store.seed(_seed_items(start, min(start + chunk, total), total))
                break
            except ServiceResponseError:
                if attempt == 2:
                    raise
                time.sleep(1)
        with lock:
            done[0] += written

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, range(0, total, chunk)))
    return done[0], time.monotonic() - started


def _event(n: int, app: str | None = None):
    import azure.functions as func

    app = app or f"app-{n % APPS:02d}"
    tag = f"9.{n}.0"
    return func.EventGridEvent(
        id=str(uuid.uuid4()), topic=TOPIC, subject=f"{app}:{tag}",
        event_type="Microsoft.ContainerRegistry.ImagePushed",
        event_time=datetime.now(timezone.utc), data_version="1.0",
        data={"id": str(uuid.uuid4()), "timestamp": datetime.now(timezone.utc).isoformat(), "action": "push",
              "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
                         "digest": "sha256:" + hashlib.sha256(f"push-{n}".encode()).hexdigest(),
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
          f"{max(read)} | latency p50 {statistics.median(latencies):.1f} ms, p95 {_pct(latencies, 95):.1f} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.intake_history")
    parser.add_argument("--deployments", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seed-budget", type=float, default=270.0)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)

    import function_app
    from devtools.azurite import Azurite
    from shared.adapters.queues import StorageRolloutQueue
    from shared.adapters.tables import TableStore
    from shared.bootstrap import Container, reset_container
    from shared.ports import DeploymentQuery
    from shared.settings import Settings

    azurite = Azurite().start()
    try:
        prefix = "bench" + uuid.uuid4().hex[:6]
        store = TableStore.from_connection_string(azurite.connection_string, prefix)
        count, seconds = seed(store, args.deployments, 3, args.seed_budget)  # Azurite is one Node thread
        print(f"seeded {count:,} deployments ({count * 2 + count // 10:,} rows) in {seconds:.1f} s "
              f"({count / max(seconds, 1e-9):,.0f}/s, 3 threads, batch transactions)")

        # ---- intake through the trigger's code path
        settings = Settings.from_env({
            "AzureWebJobsStorage": azurite.connection_string, "ACR_DEPLOY_TABLE_PREFIX": prefix,
            "ACR_DEPLOY_REGISTRIES": HOST, "ACR_DEPLOY_SUBSCRIPTION_ID": SUB,
            "ACR_DEPLOY_RESOURCE_GROUP": "rg", "ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS": "-",
        })
        container = Container(settings)
        container.__dict__["container_apps"] = None  # tag discovery off: no ARM client needed
        container.__dict__["queue"] = StorageRolloutQueue.from_connection_string(azurite.connection_string)
        reset_container(container)
        on_image_pushed = function_app.on_image_pushed._function.get_user_function()
        events = [_event(n) for n in range(args.events)]
        on_image_pushed(_event(10_000_000, app="warm-up"))  # warm-up: rules loaded, clients connected
        for label, workers, batch in (("1 thread", 1, events[: args.events // 3]),
                                      (f"{args.workers} threads", args.workers, events[args.events // 3:])):
            store_before = container.store.round_trips
            queue_before = container.queue.round_trips
            t0 = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(on_image_pushed, batch))
            elapsed = time.perf_counter() - t0
            trips = (container.store.round_trips - store_before) + (container.queue.round_trips - queue_before)
            print(f"intake ({label}): {len(batch)} events in {elapsed:.2f} s = {len(batch) / elapsed:,.0f} events/s; "
                  f"storage round trips per accepted event {trips / len(batch):.2f} "
                  f"(table {(container.store.round_trips - store_before) / len(batch):.2f} + queue "
                  f"{(container.queue.round_trips - queue_before) / len(batch):.2f})")
        reset_container(None)

        # ---- the release managers' questions
        _measure("last 50 of one app", lambda: store.list_deployments(DeploymentQuery(app="app-07", limit=50)),
                 store, args.repeat)
        # A full 24 h of seeded history: the day before the newest seeded deployment (the seed
        # may have stopped early at its time budget; events from the intake run are "now").
        newest = store.list_deployments(DeploymentQuery(app="app-00", limit=1, until=END)).items
        day = (newest[0].created_at if newest else END) - timedelta(hours=1)
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
        _measure("one deployment's story (get + events)",
                 lambda: _story(store, store.list_deployments(DeploymentQuery(app="app-03", limit=1)).items[0].id),
                 store, args.repeat)
        t0 = time.perf_counter()
        apps = store.list_apps()
        print(f"what runs where: {len(apps)} apps in {(time.perf_counter() - t0) * 1000:.1f} ms, 1 round trip")
    finally:
        azurite.stop()


def _story(store, deployment_id: str):
    from shared.ports import Page

    before = store.round_trips
    d = store.get_deployment(deployment_id)
    events = store.list_events(deployment_id)
    return Page([d, *events], None, store.round_trips - before)


if __name__ == "__main__":
    main()
