"""Seeded, randomised rollouts checked by invariants at quiescence (the history's truth).

One seed makes one `Script`: pushes of random versions to a few apps (some images broken), delivered
duplicated, reordered and partly concurrently, while ARM faults (429/500/503 with Retry-After, dropped
answers, slow answers) are switched on and off and the worker is killed at random points (after a record
is saved, or after an Azure change before its record). Two queue pumps run the worker concurrently, as
a Functions instance does. When everything has settled, `check` compares the history with what the
emulator serves:

  I1  the app serves one revision at 100 %, and the history's live record names it and its image;
  I2  the live deployment is the succeeded deployment with the highest version (then latest push);
  I3  when the highest version pushed (then latest push) is a good image, it is what serves;
  I4  no revision of a broken image ever had traffic (the emulator's peak weight, where it keeps one);
  I5  nothing is stuck: every deployment ended, and no deployment holds the app;
  I6  one deployment per pushed digest and app at most (duplicates collapse).

Everything is bounded: pushes per seed, kills per deployment and in all, and the settle time.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from semver import Version

from shared.domain.model import Deployment, DeploymentKind, Phase
from tests.scenario.driver import Crash, QueueDriver

VERSIONS = ["1.0.1", "1.0.2", "1.1.0", "1.1.1", "1.2.0", "1.3.0", "2.0.0"]
FAULT_KINDS = ["429", "500", "503", "drop"]


class Killed(Crash):
    """A simulated process death inside the worker."""


@dataclass(frozen=True)
class PushSpec:
    app: str
    version: str
    digest: str
    broken: bool
    seconds: int  # push time: seconds after the world's T0 (the event time)
    event_id: str

    @property
    def order(self) -> tuple[Version, int]:
        """What 'newer' means for the invariants: the version, then the push time (re-tags)."""
        return Version.parse(self.version), self.seconds


@dataclass(frozen=True)
class Script:
    seed: int
    apps: tuple[str, ...]
    pushes: tuple[PushSpec, ...]
    deliveries: tuple[tuple[int, ...], ...]  # groups of push indices; a group is delivered concurrently
    faults: dict[int, tuple[str, int, float]]  # before group i: (kind, count, retry_after)
    kill_rate: float
    provisioning_delay: float = 0.0  # slow answers: a new revision takes this long to be ready


def make_script(seed: int, apps: tuple[str, ...], pushes_per_app: int = 4) -> Script:
    rng = random.Random(seed)
    pushes: list[PushSpec] = []
    second = 0
    for _ in range(pushes_per_app * len(apps)):
        second += rng.randint(0, 2)  # several pushes in the same second happen
        app = rng.choice(apps)
        version = rng.choice(VERSIONS)
        pushes.append(PushSpec(app, version, "sha256:" + uuid.UUID(int=rng.getrandbits(128)).hex * 2,
                               broken=rng.random() < 0.25, seconds=second,
                               event_id=str(uuid.UUID(int=rng.getrandbits(128)))))
    order = list(range(len(pushes)))
    # Mostly push order with local swaps, sometimes a late straggler: Event Grid's real disorder.
    for i in range(len(order) - 1):
        if rng.random() < 0.35:
            order[i], order[i + 1] = order[i + 1], order[i]
    if rng.random() < 0.5 and len(order) > 2:
        order.append(order.pop(rng.randrange(len(order) // 2)))
    dupes = [rng.choice(order) for _ in range(rng.randint(1, 3))]  # at-least-once: redeliveries
    for d in dupes:
        order.insert(rng.randrange(len(order) + 1), d)
    groups: list[tuple[int, ...]] = []
    i = 0
    while i < len(order):
        size = 2 if rng.random() < 0.3 and i + 1 < len(order) else 1
        groups.append(tuple(order[i:i + size]))
        i += size
    faults = {g: (rng.choice(FAULT_KINDS), rng.randint(1, 3), rng.choice([0, 0.2, 1, 3]))
              for g in range(len(groups)) if rng.random() < 0.3}
    return Script(seed, apps, tuple(pushes), tuple(groups), faults, kill_rate=rng.choice([0.0, 0.05, 0.12]),
                  provisioning_delay=rng.choice([0.0, 0.0, 0.5, 1.5]))


class Killer:
    """Decides, seeded, when the worker dies: after a saved record (`on_saved`) or right after a real
    Azure change whose record is not written yet (`wrap`). At most `per_deployment` deaths for one
    deployment (so no message reaches its last delivery through kills alone) and `total` in all."""

    def __init__(self, seed: int, rate: float, per_deployment: int = 2, total: int = 8) -> None:
        self.rng = random.Random(seed ^ 0x5EED)
        self.rate = rate
        self.per_deployment = per_deployment
        self.total = total
        self.kills: dict[str, int] = {}
        self.lock = threading.Lock()

    def _roll(self, key: str) -> bool:
        with self.lock:
            if (self.rate <= 0 or sum(self.kills.values()) >= self.total
                    or self.kills.get(key, 0) >= self.per_deployment or self.rng.random() >= self.rate):
                return False
            self.kills[key] = self.kills.get(key, 0) + 1
            return True

    def on_saved(self, saved: Deployment) -> None:
        if not saved.phase.terminal and self._roll(saved.id):
            raise Killed(f"killed after saving {saved.id} in {saved.phase}")

    def wrap(self, apps: Any) -> Any:
        killer = self

        class KillingApps:
            def __getattr__(self, name: str) -> Any:
                attr = getattr(apps, name)
                if name not in ("create_revision", "set_traffic", "set_revision_active"):
                    return attr

                def call(*args: Any, **kwargs: Any) -> Any:
                    result = attr(*args, **kwargs)
                    target = args[0] if args else kwargs.get("target")
                    if killer._roll(f"azure:{getattr(target, 'app', '')}:{name}"):
                        raise Killed(f"killed right after {name}")
                    return result

                return call

        return KillingApps()


@dataclass
class Report:
    seed: int
    pushes: int = 0
    deliveries: int = 0
    faults: int = 0
    kills: int = 0
    deployments: int = 0
    seconds: float = 0.0
    resent: int = 0  # rollouts the sweeper had to wake (a lost or dropped message)
    violations: list[str] = field(default_factory=list)


def run_script(world: Any, script: Script, make_driver: Callable[[], QueueDriver], settle_s: float = 90.0) -> Report:
    """Deliver the script's events while two pumps run the worker; then settle and check."""
    started = time.monotonic()
    report = Report(script.seed, pushes=len(script.pushes))
    control = world.emulator.control
    control.set_provisioning_delay(script.provisioning_delay)
    for p in script.pushes:
        if p.broken:
            control.add_behavior(f"*@{p.digest}", status=500)
    stop = threading.Event()
    pump_errors: list[str] = []
    drivers = [make_driver(), make_driver()]

    def pump(driver: QueueDriver) -> None:
        try:
            driver.run(until=stop.is_set, timeout_s=settle_s + 120, max_messages=20000)
        except TimeoutError as exc:
            pump_errors.append(str(exc))

    threads = [threading.Thread(target=pump, args=(d,), daemon=True) for d in drivers]
    for t in threads:
        t.start()
    rng = random.Random(script.seed ^ 0xDE11)
    try:
        for g, group in enumerate(script.deliveries):
            if g in script.faults:
                kind, count, retry_after = script.faults[g]
                control.add_faults(kind, count=count, retry_after=retry_after)
                report.faults += count
            events = [_event(world, script.pushes[i]) for i in group]
            report.deliveries += len(events)
            if len(events) == 1:
                _deliver(world, events[0])
            else:
                pair = [threading.Thread(target=_deliver, args=(world, e)) for e in events]
                for t in pair:
                    t.start()
                for t in pair:
                    t.join(30)
            time.sleep(rng.choice([0, 0, 0.05, 0.2, 0.5]))
        control.clear_faults()
        control.set_provisioning_delay(0.0)
        deadline = time.monotonic() + settle_s
        next_sweep = time.monotonic() + SWEEP_AFTER_S
        while time.monotonic() < deadline and not all(_settled(world, a) for a in script.apps):
            if time.monotonic() >= next_sweep:
                # The sweeper timer is part of the system (every minute in Azure): it re-sends the
                # message of a rollout that made no progress for STALE_AFTER_S. Run it as if that
                # long had passed, and count what it had to recover.
                report.resent += _sweep_as_if_stale(world)
                next_sweep = time.monotonic() + SWEEP_AFTER_S
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        control.clear_faults()
    report.kills = sum(world.killer.kills.values()) if getattr(world, "killer", None) else 0
    report.violations = check(world, script) + [f"pump: {e}" for e in pump_errors]
    report.deployments = sum(len(world.deployments(a)) for a in script.apps)
    report.seconds = time.monotonic() - started
    return report


SWEEP_AFTER_S = 15.0  # settling this long without quiescence: run the sweeper


def _sweep_as_if_stale(world: Any) -> int:
    from datetime import timedelta

    from shared.domain.model import utcnow
    from shared.services.rollout.sweep import STALE_AFTER_S

    later = timedelta(seconds=STALE_AFTER_S + 5)
    worker = world.container.rollout.with_ports(clock=lambda: utcnow() + later)
    return worker.sweep().get("resent", 0)


def _event(world: Any, p: PushSpec) -> dict:
    event = world.event(p.app, p.version, event_id=p.event_id, seconds=p.seconds)
    event["data"]["target"]["digest"] = p.digest
    return event


def _deliver(world: Any, event: dict) -> None:
    """Event Grid retries a delivery that failed (5xx from the function) until it is taken."""
    for _ in range(5):
        try:
            world.push_raw(event)
            return
        except Exception:  # noqa: BLE001 - a failed delivery is retried, as Event Grid does
            time.sleep(0.2)


def _settled(world: Any, app: str) -> bool:
    ds = world.deployments(app)
    if not all(d.phase.terminal for d in ds):
        return False
    if not ds:
        return True
    state = world.store.get_app_state(ds[0].target)
    return state is None or (state.active_deployment_id == "" and not state.inflight_digests)


def check(world: Any, script: Script) -> list[str]:
    out: list[str] = []
    for app in script.apps:
        out += [f"{app}: {v}" for v in _check_app(world, script, app)]
    return out


def _check_app(world: Any, script: Script, app: str) -> list[str]:
    problems: list[str] = []
    pushes = [p for p in script.pushes if p.app == app]
    ds = world.deployments(app)
    dump = world.app_dump(app)
    revisions = {r["name"]: r for r in dump["revisions"]}

    def image_of(rev: str) -> str:
        return revisions[rev]["template"]["containers"][0]["image"] if rev in revisions else ""

    # I5 nothing stuck
    stuck = [(d.tag, d.phase.value) for d in ds if not d.phase.terminal]
    if stuck:
        problems.append(f"I5 not finished: {stuck}")
    state = world.store.get_app_state(ds[0].target) if ds else None
    if state is not None and (state.active_deployment_id or state.inflight_digests):
        problems.append(f"I5 app still held by {state.active_deployment_id!r} / {state.inflight_digests}")

    # I1 the history's live record is what serves
    serving = [name for name, w in dump["traffic"].items() if w]
    if len(serving) != 1 or dump["traffic"][serving[0]] != 100:
        problems.append(f"I1 traffic is split at quiescence: {dump['traffic']}")
        return problems
    served = serving[0]
    served_image = image_of(served)
    if state is not None and state.live_revision:
        if state.live_revision != served:
            problems.append(f"I1 history says {state.live_revision} is live, the app serves {served}")
        if state.live_image and state.live_image != served_image:
            problems.append(f"I1 history says image {state.live_image}, the app serves {served_image}")
    elif served != f"{app}--seed":
        problems.append(f"I1 history records nothing live, the app serves {served}")

    # I2 the live deployment is the newest that succeeded
    succeeded = [d for d in ds if d.phase == Phase.SUCCEEDED and d.kind != DeploymentKind.ROLLBACK]
    by_digest = {p.digest: p for p in pushes}
    if succeeded:
        # The same version pushed twice in one second: the deployment id breaks the tie, as in
        # shared/domain/precedence.py.
        best = max(succeeded, key=lambda d: (by_digest[d.digest].order if d.digest in by_digest
                                             else (Version(0), 0), d.id))
        if state is None or state.live_deployment_id != best.id:
            live = next((d for d in ds if state and d.id == state.live_deployment_id), None)
            problems.append(f"I2 live is {live.tag if live else None} ({state.live_deployment_id if state else ''}),"
                            f" newest succeeded is {best.tag} ({best.id})")

    # I3 the newest push, when good, is what serves. Pushes of one version in the same second have no
    # order but the deployment id's hash: when such a tie includes a broken image, nothing is owed.
    if pushes:
        best = max(p.order for p in pushes)
        tops = [p for p in pushes if p.order == best]
        if not any(p.broken for p in tops) and not any(served_image.endswith("@" + p.digest) for p in tops):
            top_ds = [(d.phase.value, d.reason[:160]) for d in ds if d.digest in {p.digest for p in tops}]
            problems.append(f"I3 newest good push {tops[0].version} is not served (serves "
                            f"{served_image.split('@')[-1][:19]}); its deployments: {top_ds}")

    # I4 broken images never had traffic
    broken = {p.digest for p in pushes if p.broken}
    for name, rev in revisions.items():
        peak = rev.get("peakWeight")
        if peak and image_of(name).split("@")[-1] in broken:
            problems.append(f"I4 {name} (broken image) had {peak} % traffic")

    # I6 duplicates collapse
    per_digest: dict[str, int] = {}
    for d in ds:
        if d.kind != DeploymentKind.ROLLBACK:
            per_digest[d.digest] = per_digest.get(d.digest, 0) + 1
    doubled = {k[:19]: n for k, n in per_digest.items() if n > 1}
    if doubled:
        problems.append(f"I6 more than one deployment for one digest: {doubled}")
    return problems
