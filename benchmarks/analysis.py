"""Canary analysis cost on local servers: ARM and Azure Monitor calls per successful rollout, and the
push-to-live overhead with analysis on and off.

Same canary ([50, 100], no bake) on two apps, one with `rollout.analysis` (windows of 1 s, ingestion delay
0.2 s, inconclusive windows pass: no load is sent, so the figures are the pipeline's own cost and the
windows' wait). Real intake and worker, Azurite, the Container Apps emulator (which serves the metrics).
ARM throttling limits are per subscription: the calls per rollout say how many rollouts an hour fit.
In Azure the windows are a minute and the ingestion delay 2-3 minutes: the overhead there is those waits.

    python -m benchmarks.analysis [--pushes 10] [--threads 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.rollout import SUB, Consumers, _event, _pct, bench_world  # noqa: E402

RULES = """
version: 1
defaults:
  subscription: {sub}
  resource_group: bench
  rollout: {{strategy: canary, steps: [50, 100], bake: 0s, ready_timeout: 30s, deadline: 5m}}
rules:
  - name: plain
    repository: plain-app
    tags: {{semver: ">=1.0.0"}}
    targets: [{{app: plain-app}}]
  - name: analyzed
    repository: analyzed-app
    tags: {{semver: ">=1.0.0"}}
    rollout:
      analysis: {{window: 1s, ingestion_delay: 200ms, min_requests: 1, inconclusive: pass}}
    targets: [{{app: analyzed-app}}]
"""


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--pushes", type=int, default=10, help="sequential pushes per app")
    args.add_argument("--threads", type=int, default=4)
    opts = args.parse_args(argv)

    from shared import entrypoints
    from shared.domain.model import Phase
    from shared.ports import DeploymentQuery

    with bench_world("analysis", ["plain-app", "analyzed-app"], rules=RULES.format(sub=SUB),
                     ACR_DEPLOY_TABLE_PREFIX="benchan") as (container, emulator, _):
        store = container.store
        base = datetime.now(timezone.utc).replace(microsecond=0)
        with Consumers(container.queue, opts.threads) as consumers:
            for app in ("plain-app", "analyzed-app"):
                latencies: list[float] = []
                arm: list[int] = []
                monitor: list[int] = []
                for i in range(opts.pushes):
                    tag = f"1.0.{i + 1}"
                    before = emulator.control.dump()
                    started = time.perf_counter()
                    entrypoints.handle_event(_event(app, tag, base + timedelta(seconds=i)))
                    d = _wait_terminal(store, DeploymentQuery(app=app, limit=50), tag, 60.0)
                    elapsed = time.perf_counter() - started
                    after = emulator.control.dump()
                    if d is None or d.phase != Phase.SUCCEEDED:
                        print(f"  {app} {tag}: {d.phase if d else 'not recorded'} {d.reason if d else ''}")
                        continue
                    calls = after["armCalls"] - before["armCalls"]
                    new = after["armRequests"][-calls:] if calls else []
                    metrics = sum(1 for r in new if "/microsoft.insights/metrics" in r["path"].lower())
                    latencies.append(elapsed)
                    arm.append(calls - metrics)
                    monitor.append(metrics)
                if latencies:
                    label = "analysis on " if app == "analyzed-app" else "analysis off"
                    print(f"{label}: {len(latencies)} canary rollouts [50, 100]; per successful rollout: "
                          f"{statistics.mean(arm):.1f} ARM (Container Apps) calls, "
                          f"{statistics.mean(monitor):.1f} Azure Monitor calls")
                    waits = "   (per step: a 1 s window + 0.2 s ingestion delay, woken by a delayed message)" \
                        if app == "analyzed-app" else ""
                    print(f"  push to live p50 {statistics.median(latencies) * 1000:6.0f} ms   "
                          f"p95 {_pct(latencies, 95) * 1000:6.0f} ms{waits}")
            if consumers.failures:
                print(f"  consumer errors: {len(consumers.failures)} (first: {consumers.failures[0][:200]})")
    return 0


def _wait_terminal(store, query, tag: str, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    found = None
    while time.monotonic() < deadline:
        found = next((d for d in store.list_deployments(query).items if d.tag == tag), None)
        if found is not None and found.phase.terminal:
            return found
        time.sleep(0.01)
    return found


if __name__ == "__main__":
    sys.exit(main())
