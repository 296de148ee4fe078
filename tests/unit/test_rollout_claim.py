"""The write guard (shared/services/rollout/claim.py) over the in-memory fakes: a write goes out only for
the deployment that holds the app, and only from the invocation whose view of its record is current."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.ports import ConcurrencyError
from shared.services.rollout.claim import ClaimedApps, LostClaim, saw, writing_as
from tests.unit.test_rollout_worker import Harness


def sent(h: Harness) -> int:
    return sum(1 for call in h.apps.calls if call[0] == "set_traffic")


def _held(h: Harness, tag: str, seed: str):
    """A deployment that took the app (its record as one invocation saw it)."""
    target = h.apps.add_app(f"app{seed}")
    d = h.push(target, tag, seed)
    state = h.store.get_app_state(target)
    h.store.save_app_state(replace(state, active_deployment_id=d.id))
    return target, h.store.get_deployment(d.id)


def test_the_holder_writes_and_anyone_else_is_refused_before_the_call():
    h = Harness()
    target, d = _held(h, "v1", "a")
    guarded = ClaimedApps(h.apps, h.store)
    with writing_as(d):
        guarded.set_traffic(target, {f"{target.app}--first": 100})  # holds the app: sent
    other = replace(d, id="20991231000000-0000000000")
    calls_before = sent(h)
    with writing_as(other), pytest.raises(LostClaim) as lost:
        guarded.set_traffic(target, {f"{target.app}--first": 100})
    assert lost.value.holder == d.id and sent(h) == calls_before  # nothing was sent


def test_a_stale_invocation_of_the_same_deployment_cannot_write():
    h = Harness()
    target, d = _held(h, "v1", "b")
    guarded = ClaimedApps(h.apps, h.store)
    moved_on = h.store.save_deployment(d.evolve(step=1))  # another invocation recorded the next step
    calls_before = sent(h)
    with writing_as(d), pytest.raises(ConcurrencyError):  # this one still holds the older record
        guarded.set_traffic(target, {f"{target.app}--first": 100})
    assert sent(h) == calls_before
    with writing_as(d):
        saw(moved_on)  # once it has saved the current record itself, it may write again
        guarded.set_traffic(target, {f"{target.app}--first": 100})
    assert sent(h) == calls_before + 1


def test_writes_outside_a_rollout_step_are_not_checked():
    h = Harness()
    target, _ = _held(h, "v1", "c")
    ClaimedApps(h.apps, h.store).set_traffic(target, {f"{target.app}--first": 100})
