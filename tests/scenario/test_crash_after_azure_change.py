"""A worker killed between an Azure change and the record of it resumes to the same end state.

`test_rollout_scenarios` kills the worker right after a record is saved. The harder gap is the
other one: Azure has changed (revision created, traffic moved, a revision deactivated) but the
record still says the step has not happened. The message reappears (the driver honours the
visibility timeout) and the next delivery must converge on the same end state and history as an
uninterrupted run: one new revision, the expected traffic, one terminal event.

The crash is injected by `CrashingApps`, a thin test-only wrapper around the real
`ContainerAppsAdapter`: the real SDK call against the emulator happens first, then the "process
dies" (a `Crash`, which the worker's own error handling cannot catch), once.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from shared.domain.model import Deployment, Phase
from tests.scenario.conftest import ALL_PHASES, assert_live
from tests.scenario.driver import Crash


class KilledAfterAzureChange(Crash):
    pass


class CrashingApps:
    """Calls through to the real adapter; after the first real call of `method` whose arguments
    satisfy `when`, raises `KilledAfterAzureChange` (the change is made, the record is not)."""

    def __init__(self, real: Any, method: str, when: Callable[..., bool]) -> None:
        self._real = real
        self._method = method
        self._when = when
        self.crashed: list[tuple] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name != self._method:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)  # the real Azure change happens
            if not self.crashed and self._when(*args, **{k: v for k, v in kwargs.items() if k != "precondition"}):
                self.crashed.append(args)
                raise KilledAfterAzureChange(f"killed right after {name}{args[1:]}")
            return result

        return call


def crash_after(world, method: str, when: Callable[..., bool]) -> CrashingApps:
    wrapper = CrashingApps(world.container.container_apps, method, when)
    world.container.rollout = world.container.rollout.with_ports(apps=wrapper)
    return wrapper


def terminal_events(world, d: Deployment) -> list:
    return [e for e in world.store.list_events(d.id) if e.phase.terminal]


def revision_names(world, app: str) -> list[str]:
    return [r["name"] for r in world.app_dump(app)["revisions"]]


def assert_crashed_once(world, wrapper: CrashingApps) -> None:
    assert len(wrapper.crashed) == 1, "the injected crash never happened"
    assert sum("KilledAfterAzureChange" in f for f in world.driver.failures) == 1, world.driver.failures


# ---------------------------------------------------------------------------- happy path

@pytest.mark.parametrize("point", ["create_revision", "set_traffic"])
def test_a_push_killed_right_after_an_azure_change_still_goes_live_once(world, point):
    app = world.seed_app(f"az{point[:3]}")
    if point == "create_revision":  # the PATCH that creates the revision at 0 % returned
        wrapper = crash_after(world, "create_revision", lambda *a, **k: True)
    else:  # the traffic PATCH moved 100 % to the new revision
        wrapper = crash_after(world, "set_traffic", lambda _t, weights, *_a, **_k: 100 in weights.values())
    world.push(app, "1.0.0")
    world.run(app, timeout_s=30)
    d = world.deployment(app, "1.0.0")
    assert_crashed_once(world, wrapper)
    assert_live(world, app, d)
    assert world.phases(d) == ALL_PHASES, world.story(d)
    assert revision_names(world, app) == [f"{app}--seed", d.revision]  # exactly one new revision
    assert len([e for e in world.store.list_events(d.id) if e.phase == Phase.WAITING_READY
                and e.message.startswith("created")]) == 1, world.story(d)
    assert [e.phase for e in terminal_events(world, d)] == [Phase.SUCCEEDED]
    assert world.revision(app, f"{app}--seed")["active"]  # kept warm, as without the crash


def test_a_push_killed_after_deactivating_an_old_revision_in_clean_up_finishes_it(world):
    app = world.seed_app("azclean")
    world.push(app, "1.0.0")
    world.run(app)
    first = world.deployment(app, "1.0.0")
    seed = f"{app}--seed"
    # second push: keep_previous=1 keeps 1.0.0 warm and deactivates the seed revision
    wrapper = crash_after(world, "set_revision_active",
                          lambda _t, name, active: name == seed and active is False)
    world.push(app, "1.1.0")
    world.run(app, count=2, timeout_s=30)
    second = world.deployment(app, "1.1.0")
    assert_crashed_once(world, wrapper)
    assert_live(world, app, second)
    assert world.phases(second) == ALL_PHASES, world.story(second)
    assert revision_names(world, app) == [seed, first.revision, second.revision]
    assert world.revision(app, seed)["active"] is False
    assert world.revision(app, first.revision)["active"]  # the instant rollback target
    assert [e.phase for e in terminal_events(world, second)] == [Phase.SUCCEEDED]
    # the record tells what the (interrupted) clean-up did, not only what was left to do
    assert f"kept warm for rollback: {first.revision}" in second.reason, second.reason
    assert f"deactivated: {seed}" in second.reason, world.story(second)


# ---------------------------------------------------------------------------- failing paths

def test_a_failed_smoke_killed_after_deactivating_the_revision_records_the_failure_once(world):
    app = world.seed_app("azsick")
    world.emulator.control.add_behavior(world.image(app, "1.0.1"), status=503)
    wrapper = crash_after(world, "set_revision_active", lambda _t, _name, active: active is False)
    world.push(app, "1.0.1")
    world.run(app, timeout_s=30)
    d = world.deployment(app, "1.0.1")
    assert_crashed_once(world, wrapper)
    assert wrapper.crashed[0][1] == d.revision
    assert d.phase == Phase.FAILED, world.story(d)
    assert world.phases(d) == ["queued", "creating_revision", "waiting_ready", "smoke_testing", "failed"]
    assert "never received traffic" in d.reason and f"{d.revision} deactivated" in d.reason, d.reason
    # the attempts recorded are the ones that decided (503), not probes of a revision already stopped
    attempts = [e for e in world.store.list_events(d.id) if e.data.get("check")]
    assert [a.data["status"] for a in attempts] == [503, 503], world.story(d)
    assert world.app_dump(app)["traffic"] == {f"{app}--seed": 100}
    rev = world.revision(app, d.revision)
    assert rev["active"] is False and rev["trafficWeight"] == 0 and rev["requests"] == 2
    assert revision_names(world, app) == [f"{app}--seed", d.revision]
    assert [e.phase for e in terminal_events(world, d)] == [Phase.FAILED]
    state = world.store.get_app_state(d.target)
    assert state.live_revision == "" and state.active_deployment_id == "" and state.inflight_digests == ()


CANARY_PHASES = ["queued", "creating_revision", "waiting_ready", "smoke_testing",
                 "shifting", "verifying", "shifting", "verifying", "rolled_back"]


@pytest.mark.parametrize("point", ["canary_shift", "rollback_traffic", "rollback_deactivate"])
def test_a_canary_rollback_killed_after_an_azure_change_ends_rolled_back_once(world, point):
    app = world.seed_app("canary")
    seed = f"{app}--seed"
    world.emulator.control.add_behavior(world.image(app, "2.0.0"), fail_after=3, status=500)
    if point == "canary_shift":  # the 10 % step was applied, not recorded
        wrapper = crash_after(world, "set_traffic", lambda _t, weights, *_a, **_k: sorted(weights.values()) == [10, 90])
    elif point == "rollback_traffic":  # traffic went back to the seed, the rollback is not recorded
        wrapper = crash_after(world, "set_traffic", lambda _t, weights, *_a, **_k: weights == {seed: 100})
    else:  # ... and the failed revision was deactivated too
        wrapper = crash_after(world, "set_revision_active", lambda _t, _name, active: active is False)
    world.push(app, "2.0.0")
    world.run(app, timeout_s=40)
    d = world.deployment(app, "2.0.0")
    assert_crashed_once(world, wrapper)
    assert d.phase == Phase.ROLLED_BACK, world.story(d)
    assert world.phases(d) == CANARY_PHASES, world.story(d)
    shifts = [e.data["traffic"] for e in world.store.list_events(d.id)
              if e.phase == Phase.VERIFYING and "traffic" in e.data]
    assert shifts == [{seed: 90, d.revision: 10}, {seed: 50, d.revision: 50}], world.story(d)
    assert "verification failed at 50 %" in d.reason and f"traffic back to {seed} 100 %" in d.reason, d.reason
    assert world.app_dump(app)["traffic"] == {seed: 100}
    assert world.revision(app, d.revision)["active"] is False
    assert revision_names(world, app) == [seed, d.revision]
    assert [e.phase for e in terminal_events(world, d)] == [Phase.ROLLED_BACK]
    # the failed revision never received more than the 50 % it failed at
    weights = [e.data["traffic"].get(d.revision, 0) for e in world.store.list_events(d.id)
               if "traffic" in e.data]
    assert max(weights) == 50, world.story(d)
    state = world.store.get_app_state(d.target)
    assert state.active_deployment_id == "" and state.live_revision != d.revision
