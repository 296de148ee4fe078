"""Traffic shifts whose ARM operation outlives the inline window: requested, recorded, confirmed by a
delayed wake-up that reads the app: waits are messages, not sleeping functions."""

from __future__ import annotations


from shared.domain.model import Phase
from shared.services.rollout.phases import SHIFT_CONFIRM_S, SHIFT_INLINE_S
from tests.unit.test_rollout_fakes import CANARY, fast
from tests.unit.test_rollout_worker import Harness, Killed


def traffic_waits(h: Harness) -> list[tuple[dict, float | None]]:
    return [(m, delay) for m, delay in h.queue.sent if m.get("wake") is not None]


def test_a_slow_shift_is_recorded_as_requested_and_confirmed_by_a_delayed_message():
    h = Harness()
    target = h.apps.add_app("slow")
    h.apps.slow_traffic, h.apps.busy_reads = 1, 0  # "still running" once; applied by the next read
    seen: list = []
    h.worker = h.worker.with_ports(on_saved=lambda saved: seen.append((saved.phase, saved.progress)))
    d = h.push(target, "v2", "a")
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    assert h.traffic_calls() == [{done.revision: 100}]  # confirmed by reading, not a second PATCH
    # the request was saved (SHIFTING, table recorded) before the step returned
    pending = [(phase, progress) for phase, progress in seen if progress.traffic_requested]
    assert pending and pending[0][0] == Phase.SHIFTING
    assert pending[0][1].traffic_requested.table == {done.revision: 100}
    assert done.progress.traffic_requested is None
    # and a wake-up of SHIFT_CONFIRM_S went out: the step never waited for the operation
    assert any(delay == SHIFT_CONFIRM_S for _, delay in h.queue.sent)
    assert h.phases(d) == ["queued", "creating_revision", "waiting_ready", "smoke_testing", "shifting",
                           "verifying", "succeeded"]
    lines = [e.message for e in h.store.list_events(d.id)]
    requested = next(i for i, m in enumerate(lines) if "requested; Azure is still applying it" in m)
    now_line = next(i for i, m in enumerate(lines) if m.startswith("traffic now"))
    assert requested < now_line


def test_the_inline_wait_is_bounded_by_the_worker():
    h = Harness()
    target = h.apps.add_app("bounded")
    waits: list = []
    real = h.apps.set_traffic

    def spy(t, weights, wait_s=None, precondition=None):
        waits.append(wait_s)
        return real(t, weights, wait_s, precondition=precondition)

    h.apps.set_traffic = spy
    h.push(target, "v2", "b")
    h.drain()
    assert waits == [SHIFT_INLINE_S] and SHIFT_INLINE_S <= 1.0


def test_while_azure_still_applies_it_the_worker_waits_again_without_a_second_patch():
    h = Harness()
    target = h.apps.add_app("busy")
    h.apps.slow_traffic, h.apps.busy_reads = 1, 3  # InProgress for three confirmations
    d = h.push(target, "v2", "c")
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    assert h.traffic_calls() == [{done.revision: 100}]
    lines = [e.message for e in h.store.list_events(d.id)]
    assert sum("requested" in m for m in lines) == 1  # one line per PATCH, not per confirmation
    assert sum(1 for _, delay in h.queue.sent if delay == SHIFT_CONFIRM_S) >= 4


def test_a_change_that_was_not_applied_is_requested_again():
    h = Harness()
    target = h.apps.add_app("lost")
    # the first PATCH's operation fails (never applied); the second is slow too, then applied
    h.apps.slow_traffic, h.apps.busy_reads, h.apps.lost_traffic = 2, 1, 1
    d = h.push(target, "v2", "d")
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    assert h.traffic_calls() == [{done.revision: 100}, {done.revision: 100}]
    assert any("requested again (the earlier change was not applied)" in e.message
               for e in h.store.list_events(d.id))
    assert h.apps.app(target).traffic == {done.revision: 100}


def test_a_slow_canary_step_confirms_each_step_and_still_rolls_back_on_a_failed_verify():
    h = Harness()
    target = h.apps.add_app("slowcan")
    h.apps.slow_traffic, h.apps.busy_reads = 2, 1  # both forward steps outlive the inline window
    from tests.unit.test_rollout_fakes import push_deployment, record

    d = push_deployment(target, "v2", "e", h.clock(), fast(**CANARY))
    h.apps.behaviours[d.image] = {"fail_after": 3}
    record(h.store, h.queue, d)
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.ROLLED_BACK, h.story(d)
    assert h.traffic_calls() == [
        {"slowcan--first": 90, done.revision: 10},
        {"slowcan--first": 50, done.revision: 50},
        {"slowcan--first": 100},  # the rollback: awaited as before (no wait_s)
    ]
    assert "verification failed at 50 %" in done.reason
    assert h.apps.app(target).traffic == {"slowcan--first": 100}


def test_a_crash_after_recording_the_request_resumes_by_confirming():
    crashed: list = []

    def crash_once(saved):
        if saved.progress.traffic_requested and not crashed:
            crashed.append(saved)
            raise Killed("after recording the traffic request")

    h = Harness(on_saved=crash_once)
    target = h.apps.add_app("crashy")
    h.apps.slow_traffic, h.apps.busy_reads = 1, 1
    d = h.push(target, "v2", "f")
    h.drain()
    done = h.get(d)
    assert crashed, "the injected crash never happened"
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    assert h.traffic_calls() == [{done.revision: 100}]  # the redelivery confirmed, never re-patched
    assert [e.phase for e in h.store.list_events(d.id)].count(Phase.SUCCEEDED) == 1


def test_zero_delay_shifts_need_no_extra_message():
    h = Harness()
    target = h.apps.add_app("quick")
    d = h.push(target, "v2", "g")
    h.drain()
    assert h.get(d).phase == Phase.SUCCEEDED
    assert not traffic_waits(h)  # push to live in one message, as before
