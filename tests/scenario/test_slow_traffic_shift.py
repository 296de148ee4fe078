"""A traffic PATCH whose ARM operation outlives the step's inline window (the emulator's provisioning
delay keeps every app operation InProgress): the step records the request and ends; a delayed
wake-up reads the app, sees the change applied, and the rollout carries on."""

from __future__ import annotations

from typing import Any

from shared.domain.model import Phase
from tests.scenario.conftest import ALL_PHASES, assert_live


class RecordingApps:
    """Calls through to the real adapter and records what each traffic PATCH answered."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.traffic: list[tuple[dict, Any, bool]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def set_traffic(self, target, weights, wait_s=None, precondition=None):
        applied = self._real.set_traffic(target, weights, wait_s, precondition=precondition)
        self.traffic.append((dict(weights), wait_s, applied))
        return applied


def test_a_shift_still_running_after_the_inline_window_completes_across_a_delayed_message(world):
    app = world.seed_app("slowshift")
    apps = RecordingApps(world.container.container_apps)
    world.container.rollout = world.container.rollout.with_ports(apps=apps)
    # Every ARM operation now stays InProgress for 3 s: the revision's start-up is polled inline,
    # the traffic PATCH outlives its 1 s inline window.
    world.emulator.control.set_provisioning_delay(3.0)
    world.push(app, "1.0.0")
    world.run(app, timeout_s=40)
    d = world.deployment(app, "1.0.0")
    assert_live(world, app, d)
    assert world.phases(d) == ALL_PHASES
    # One PATCH, answered "still running"; the step did not wait for it, and no second PATCH.
    assert apps.traffic == [({d.revision: 100}, 1.0, False)]
    events = world.store.list_events(d.id)
    lines = [(e.phase, e.message) for e in events]
    requested = [i for i, (phase, m) in enumerate(lines)
                 if phase == Phase.SHIFTING and "requested; Azure is still applying it" in m]
    shifted = [i for i, (phase, m) in enumerate(lines) if phase == Phase.VERIFYING and "traffic now" in m]
    assert len(requested) == 1 and len(shifted) == 1 and requested[0] < shifted[0], world.story(d)
    assert events[requested[0]].data["requested_traffic"] == {d.revision: 100}
    assert events[shifted[0]].data["traffic"] == {d.revision: 100}
    # Confirmed by a delayed wake-up message (the record keeps the latest wake number).
    assert d.progress.wake >= 1
    assert d.progress.traffic_requested is None
    assert [e.phase for e in events].count(Phase.SUCCEEDED) == 1
