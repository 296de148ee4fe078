"""Scenario worlds: the real intake, rollout worker and adapters on Azurite + the emulator.

Each world gets its own resource group, table prefix and queue, and installs its `Container` as the
process-wide one, so `shared.entrypoints` (what function_app.py calls) drives it unchanged.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from shared import entrypoints
from shared.bootstrap import Container, reset_container
from shared.domain.model import Deployment, Phase
from shared.ports import DeploymentQuery
from shared.settings import Settings
from tests.scenario.driver import QueueDriver

SUB = "00000000-0000-0000-0000-000000000000"
REGISTRY = "demo.azurecr.io"
TOPIC = f"/subscriptions/{SUB}/resourceGroups/registry-rg/providers/Microsoft.ContainerRegistry/registries/demo"
T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)


def digest_for(app: str, tag: str) -> str:
    return "sha256:" + hashlib.sha256(f"{app}:{tag}:{uuid.uuid4()}".encode()).hexdigest()


@dataclass
class World:
    emulator: Any
    container: Container
    rg: str
    driver: QueueDriver
    clock_offset: int = 0
    digests: dict[tuple[str, str], str] = field(default_factory=dict)

    # ---- apps
    def seed_app(self, prefix: str, mode: str = "Multiple", **extra: Any) -> str:
        app = f"{prefix}-{uuid.uuid4().hex[:6]}"
        for route in extra.get("traffic") or []:  # a pinned entry may name a revision of this app
            if "revisionName" in route:
                route["revisionName"] = route["revisionName"].format(app=app)
        entry = {"name": app, "environment": "env", "activeRevisionsMode": mode,
                 "image": f"{REGISTRY}/{app}:0.9.0", "revisionSuffix": "seed", **extra}
        self.emulator.control.seed({"subscriptionId": SUB, "resourceGroups": [
            {"name": self.rg, "location": "westeurope", "environments": [{"name": "env"}], "apps": [entry]}]})
        return app

    def image(self, app: str, tag: str) -> str:
        return f"{REGISTRY}/{app}@{self.digest(app, tag)}"

    def digest(self, app: str, tag: str) -> str:
        return self.digests.setdefault((app, tag), digest_for(app, tag))

    # ---- events
    def event(self, app: str, tag: str, event_id: str | None = None, seconds: int | None = None) -> dict:
        if seconds is None:
            self.clock_offset += 1
            seconds = self.clock_offset
        at = (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
        return {
            "id": event_id or str(uuid.uuid4()), "topic": TOPIC, "subject": f"{app}:{tag}",
            "eventType": "Microsoft.ContainerRegistry.ImagePushed", "eventTime": at,
            "dataVersion": "2.0", "metadataVersion": "1",
            "data": {
                "id": str(uuid.uuid4()), "timestamp": at, "action": "push",
                "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "size": 1024, "digest": self.digest(app, tag), "length": 1024,
                           "repository": app, "tag": tag},
                "request": {"id": str(uuid.uuid4()), "host": REGISTRY, "method": "PUT",
                            "useragent": "docker/27"},
            },
        }

    def push(self, app: str, tag: str, **kw: Any) -> Any:
        return entrypoints.handle_event(self.event(app, tag, **kw))

    def push_raw(self, event: dict) -> Any:
        return entrypoints.handle_event(event)

    # ---- reading the outcome
    @property
    def store(self) -> Any:
        return self.container.store

    def deployments(self, app: str) -> list[Deployment]:
        page = self.store.list_deployments(DeploymentQuery(app=app, limit=100))
        return sorted(page.items, key=lambda d: d.id)

    def deployment(self, app: str, tag: str) -> Deployment:
        found = [d for d in self.deployments(app) if d.tag == tag]
        assert len(found) == 1, [(d.id, d.tag, d.phase) for d in self.deployments(app)]
        return found[0]

    def phases(self, d: Deployment) -> list[str]:
        out: list[str] = []
        for e in self.store.list_events(d.id):
            if not out or out[-1] != e.phase.value:
                out.append(e.phase.value)
        return out

    def story(self, d: Deployment) -> str:
        return "\n".join(f"  {e.phase.value:18} {e.message}" for e in self.store.list_events(d.id))

    def story_of_app(self, app: str) -> str:
        return "\n".join(f" {d.tag} {d.digest[7:15]} {d.phase.value}: {d.reason[:200]}\n{self.story(d)}"
                         for d in self.deployments(app))

    def settled(self, app: str, count: int = 1) -> bool:
        ds = self.deployments(app)
        if len(ds) < count or not all(d.phase.terminal for d in ds):
            return False
        state = self.store.get_app_state(ds[0].target)  # ... and every one of them let go of the app
        return state is not None and state.active_deployment_id == "" and not state.inflight_digests

    def run(self, *apps: str, count: int = 1, timeout_s: float = 30.0) -> None:
        self.driver.run(until=lambda: all(self.settled(a, count) for a in apps), timeout_s=timeout_s)

    def app_dump(self, app: str) -> dict:
        return self.emulator.control.app(app)

    def revision(self, app: str, name: str) -> dict:
        return next(r for r in self.app_dump(app)["revisions"] if r["name"] == name)


RULES = """\
version: 1
rules:
  - name: canary
    repository: "canary-*"
    tags: "semver:*"
    targets: [{app: "{name}", resource_group: RG}]
    rollout: {strategy: canary, steps: [10, 50, 100], bake: 0s, keep_previous: 1}
    smoke: [{path: /healthz, retries: 1, backoff: 100ms}]
    verify: [{name: app, path: /, retries: 0, consecutive_passes: 10}]
  - name: heal
    repository: "heal-*"
    tags: "semver:*"
    targets: [{app: "{name}", resource_group: RG}]
    rollout: {drift: repair}
    smoke: [{path: /healthz, retries: 1, backoff: 100ms}]
  - name: cold
    repository: "cold-*"
    tags: "semver:*"
    targets: [{app: "{name}", resource_group: RG}]
    rollout: {warmup: 5s}
    smoke: [{path: /healthz, timeout: 1s, retries: 0}]
  - name: nowarm
    repository: "nowarm-*"
    tags: "semver:*"
    targets: [{app: "{name}", resource_group: RG}]
    rollout: {warmup: 0s}
    smoke: [{path: /healthz, timeout: 1s, retries: 0}]
  - name: bluegreen
    repository: "bg-*"
    tags: "semver:*"
    targets: [{app: "{name}", resource_group: RG}]
    rollout: {strategy: blue-green, label: green, production_label: blue, previous_label: previous}
    smoke: [{path: /healthz, retries: 1, backoff: 100ms}]
  - name: quick
    repository: "*"
    tags: "semver:*"
    targets: [{app: "{name}", resource_group: RG}]
    smoke: [{path: /healthz, retries: 1, backoff: 100ms}]
"""


@pytest.fixture
def world(emulator, storage_connection_string, table_prefix, tmp_path: Path):
    from shared.adapters.queues import StorageRolloutQueue
    from shared.services.intake import ensure_recorded
    from shared.services.rollout import RolloutWorker

    rg = f"rg-{uuid.uuid4().hex[:8]}"
    emulator.control.seed({"subscriptionId": SUB, "resourceGroups": [
        {"name": rg, "location": "westeurope", "environments": [{"name": "env"}]}]})
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("RG", rg))
    settings = Settings.from_env({
        "AzureWebJobsStorage": storage_connection_string,
        "ACR_DEPLOY_TABLE_PREFIX": table_prefix,
        "ACR_DEPLOY_ARM_ENDPOINT": emulator.base_url,
        "ACR_DEPLOY_ARM_CA_BUNDLE": emulator.ca_path,
        "ACR_DEPLOY_ARM_CREDENTIAL": "emulator",
        "ACR_DEPLOY_SUBSCRIPTION_ID": SUB,
        "ACR_DEPLOY_RESOURCE_GROUP": rg,
        "ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS": "-",
        "ACR_DEPLOY_REGISTRIES": REGISTRY,
        "ACR_DEPLOY_RULES_FILE": str(rules),
    })
    container = Container(settings)
    queue = StorageRolloutQueue.from_connection_string(storage_connection_string, "r" + uuid.uuid4().hex[:12])
    container.queue = queue  # per-world queue (cached_property: the instance attribute wins)
    container.rollout = RolloutWorker(
        container.store, queue, container.container_apps, container.probe, container.publisher,
        budget_s=5.0, tick_s=0.05, recover=lambda deployment: ensure_recorded(container.store, deployment),
    )
    reset_container(container)
    world = World(emulator, container, rg, QueueDriver(queue, visibility_timeout=1))
    try:
        yield world
    finally:
        reset_container(None)
        emulator.control.clear_faults()
        emulator.control.set_provisioning_delay(0.0)
        queue.client.delete_queue()
        container.container_apps.close()


ALL_PHASES = ["queued", "creating_revision", "waiting_ready", "smoke_testing", "shifting",
              "verifying", "succeeded"]


def assert_live(world: World, app: str, d: Deployment) -> None:
    """The emulator serves `d`'s revision with all traffic, and the app state says so."""
    assert d.phase == Phase.SUCCEEDED, world.story(d)
    dump = world.app_dump(app)
    assert dump["traffic"] == {d.revision: 100}
    assert world.revision(app, d.revision)["template"]["containers"][0]["image"] == d.image
    state = world.store.get_app_state(d.target)
    assert (state.live_revision, state.live_deployment_id, state.active_deployment_id) == (d.revision, d.id, "")


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest hook
    """The invariant scenarios' figures (`make soak` prints them; `make test` too, for its few seeds)."""
    REPORTS = getattr(config, "acr_invariant_reports", [])
    if not REPORTS:
        return
    tr = terminalreporter
    bad = [r for r in REPORTS if r.violations]
    tr.write_sep("-", "invariant scenarios")
    tr.write_line(
        f"seeds {len(REPORTS)}, pushes {sum(r.pushes for r in REPORTS)}, deliveries "
        f"{sum(r.deliveries for r in REPORTS)}, deployments {sum(r.deployments for r in REPORTS)}, "
        f"ARM faults {sum(r.faults for r in REPORTS)}, worker kills {sum(r.kills for r in REPORTS)}, "
        f"rollouts the sweeper had to wake {sum(r.resent for r in REPORTS)}, "
        f"violations {sum(len(r.violations) for r in REPORTS)} in {len(bad)} seed(s), "
        f"{sum(r.seconds for r in REPORTS):.0f} s")
    for r in bad:
        tr.write_line(f"  seed {r.seed}: " + "; ".join(v[:160] for v in r.violations))
