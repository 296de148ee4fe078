"""Rollout overhead on local servers: push to live, and a burst of pushes across many apps.

Runs its own Azurite and Container Apps emulator (zero provisioning delay, one smoke pass), the
real intake (`shared.entrypoints.handle_event`) and the real rollout worker, with several queue
consumer threads standing in for the Functions host (host.json batchSize 8). Prints figures; the
targets (p95 push-to-live < 2 s; 100 pushes over 20 apps settled < 30 s) are for reading, not asserting.

    python -m benchmarks.rollout [--pushes 30] [--apps 20] [--burst 100] [--threads 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from contextlib import contextmanager
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SUB = "00000000-0000-0000-0000-000000000000"
REGISTRY = "bench.azurecr.io"


def _event(app: str, tag: str, at: datetime) -> dict:
    import hashlib

    digest = "sha256:" + hashlib.sha256(f"{app}:{tag}:{uuid.uuid4()}".encode()).hexdigest()
    stamp = at.isoformat().replace("+00:00", "Z")
    return {
        "id": str(uuid.uuid4()), "subject": f"{app}:{tag}", "eventTime": stamp, "dataVersion": "2.0",
        "topic": f"/subscriptions/{SUB}/resourceGroups/reg/providers/Microsoft.ContainerRegistry/registries/bench",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed", "metadataVersion": "1",
        "data": {"id": str(uuid.uuid4()), "timestamp": stamp, "action": "push",
                 "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
                            "digest": digest, "length": 1, "repository": app, "tag": tag},
                 "request": {"id": str(uuid.uuid4()), "host": REGISTRY, "method": "PUT", "useragent": "bench"}},
    }


class Consumers:
    """N threads receiving from the rollout queue like the Functions host, until stopped."""

    def __init__(self, queue, threads: int) -> None:
        from tests.scenario.driver import QueueDriver

        self.drivers = [QueueDriver(queue, visibility_timeout=30, poll_s=0.05) for _ in range(threads)]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(d,), daemon=True) for d in self.drivers]

    def _loop(self, driver) -> None:
        while not self._stop.is_set():
            try:
                if not driver.step(max_messages=8):
                    time.sleep(driver.poll_s)
            except Exception as exc:  # noqa: BLE001 - keep consuming; report at the end
                driver.failures.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.1)

    def __enter__(self) -> "Consumers":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    @property
    def failures(self) -> list[str]:
        return [f for d in self.drivers for f in d.failures]


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


@contextmanager
def bench_world(name: str, apps: list[str], rules: str = "", **extra: str) -> Iterator[tuple[Any, Any, Path]]:
    """Azurite and the emulator on loopback, `apps` seeded (Multiple mode, a seed revision) in
    resource group `bench`, and a `Container` wired to both installed as the process's own (what
    `shared.entrypoints` uses). Yields (container, emulator, a scratch directory); stops everything
    afterwards. `rules`: a rules file's text (none: the zero-config convention); `extra`: app
    settings on top of the common ones."""
    from devtools.aca_emulator import EmulatorServer
    from devtools.azurite import Azurite
    from shared.bootstrap import Container, reset_container
    from shared.settings import Settings

    tmp = tempfile.TemporaryDirectory(prefix=f"bench-{name}-")
    if rules:
        (Path(tmp.name) / "rules.yaml").write_text(rules)
        extra = {"ACR_DEPLOY_RULES_FILE": str(Path(tmp.name) / "rules.yaml"), **extra}
    azurite = Azurite().start()
    emulator = EmulatorServer(tls_dir=Path(tmp.name) / "tls", provisioning_delay=0.0).start()
    try:
        emulator.control.seed({"subscriptionId": SUB, "resourceGroups": [{
            "name": "bench", "location": "westeurope", "environments": [{"name": "env"}],
            "apps": [{"name": n, "environment": "env", "activeRevisionsMode": "Multiple",
                      "image": f"{REGISTRY}/{n}:0.0.1", "revisionSuffix": "seed"} for n in apps]}]})
        container = Container(Settings.from_env({
            "AzureWebJobsStorage": azurite.connection_string,
            "ACR_DEPLOY_ARM_ENDPOINT": emulator.base_url, "ACR_DEPLOY_ARM_CA_BUNDLE": emulator.ca_path,
            "ACR_DEPLOY_ARM_CREDENTIAL": "emulator", "ACR_DEPLOY_SUBSCRIPTION_ID": SUB,
            "ACR_DEPLOY_RESOURCE_GROUP": "bench", "ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS": "-",
            "ACR_DEPLOY_REGISTRIES": REGISTRY, **extra,
        }))
        reset_container(container)
        yield container, emulator, Path(tmp.name)
    finally:
        reset_container(None)
        emulator.stop()
        azurite.stop()
        tmp.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--pushes", type=int, default=30, help="sequential pushes timed to live")
    args.add_argument("--apps", type=int, default=20)
    args.add_argument("--burst", type=int, default=100)
    args.add_argument("--threads", type=int, default=8)
    opts = args.parse_args(argv)

    from shared import entrypoints
    from shared.adapters.queues import StorageRolloutQueue
    from shared.domain.model import Phase
    from shared.ports import DeploymentQuery

    names = [f"bench-{i:02d}" for i in range(max(opts.apps, 1))] + ["solo"]
    with bench_world("rollout", names, ACR_DEPLOY_TABLE_PREFIX="bench") as (container, emulator, _):
        queue: StorageRolloutQueue = container.queue
        store = container.store
        base = datetime.now(timezone.utc).replace(microsecond=0)

        def deployment_of(app: str, tag: str):
            for d in store.list_deployments(DeploymentQuery(app=app, limit=50)).items:
                if d.tag == tag:
                    return d
            return None

        with Consumers(queue, opts.threads) as consumers:
            # ---- 1. push to live, one at a time
            latencies: list[float] = []
            for i in range(opts.pushes):
                tag = f"1.0.{i + 1}"
                started = time.perf_counter()
                entrypoints.handle_event(_event("solo", tag, base + timedelta(seconds=i)))
                deadline = time.monotonic() + 30
                d = None
                while time.monotonic() < deadline:
                    d = deployment_of("solo", tag)
                    if d is not None and d.phase.terminal:
                        break
                    time.sleep(0.01)
                elapsed = time.perf_counter() - started
                if d is None or d.phase != Phase.SUCCEEDED:
                    print(f"  push {tag}: {d.phase if d else 'not recorded'} {d.reason if d else ''}")
                    continue
                latencies.append(elapsed)
            if latencies:
                print(f"push to live ({len(latencies)} pushes, {opts.threads} consumer threads, "
                      f"zero provisioning delay, one smoke pass):")
                print(f"  p50 {statistics.median(latencies) * 1000:7.0f} ms   "
                      f"p95 {_pct(latencies, 95) * 1000:7.0f} ms   max {max(latencies) * 1000:7.0f} ms"
                      f"   (target p95 < 2000 ms)")

            # ---- 2. a burst: `burst` pushes across `apps` apps, newest version per app must win
            apps = names[: opts.apps]
            per_app = max(opts.burst // max(len(apps), 1), 1)
            events = []
            for v in range(per_app):
                for j, app in enumerate(apps):
                    events.append((app, f"2.0.{v}", _event(app, f"2.0.{v}", base + timedelta(minutes=5, seconds=v))))
            started = time.perf_counter()
            intake_threads = []
            chunks = [events[k::opts.threads] for k in range(opts.threads)]
            for chunk in chunks:
                t = threading.Thread(target=lambda c=chunk: [entrypoints.handle_event(e) for _, _, e in c])
                t.start()
                intake_threads.append(t)
            for t in intake_threads:
                t.join(timeout=60)
            accepted_at = time.perf_counter() - started
            newest = f"2.0.{per_app - 1}"
            deadline = time.monotonic() + 120
            settled = False
            while time.monotonic() < deadline:
                states = {s.target.app: s for s in store.list_apps()}
                done = all(states.get(a) and states[a].live_tag == newest and not states[a].active_deployment_id
                           and not states[a].inflight_digests for a in apps)
                if done:
                    settled = True
                    break
                time.sleep(0.1)
            wall = time.perf_counter() - started
            phases: dict[str, int] = {}
            for app in apps:
                for d in store.list_deployments(DeploymentQuery(app=app, limit=50)).items:
                    if d.tag.startswith("2.0."):
                        phases[d.phase.value] = phases.get(d.phase.value, 0) + 1
            print(f"burst: {len(events)} pushes across {len(apps)} apps ({opts.threads} consumer threads):")
            print(f"  intake done in {accepted_at:5.1f} s; {'settled' if settled else 'NOT settled'} in "
                  f"{wall:5.1f} s (target < 30 s); every app on {newest}: {settled}")
            print(f"  deployments by outcome: {dict(sorted(phases.items()))}")
            if consumers.failures:
                print(f"  consumer errors: {len(consumers.failures)} (first: {consumers.failures[0][:200]})")
            print(f"  ARM calls to the emulator: {emulator.control.dump()['armCalls']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
