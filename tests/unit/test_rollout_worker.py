"""The rollout worker with in-memory fakes: every path through the phases, told by the history."""

from __future__ import annotations

import pytest

from shared.adapters.memory import MemoryStore
from shared.domain.model import Phase
from shared.errors import ConflictError, InvalidRequestError, NotFoundError
from shared.ports import PermanentAzureError, TransientAzureError
from shared.services.intake import ensure_recorded
from shared.services.rollout import MAX_DEQUEUE, RolloutWorker
from shared.services.rollout.messages import drift_target_key, start_message
from tests.unit.test_rollout_fakes import (
    CANARY, Clock, DelayQueue, FakeApps, RecordingPublisher, fast, push_deployment, record,
)


class Killed(BaseException):
    """A simulated process death: not an Exception, so the worker cannot catch it."""


class Harness:
    def __init__(self, budget_s: float = 5.0, publisher_fails: bool = False, on_saved=None) -> None:
        self.clock = Clock()
        self.store = MemoryStore()
        self.queue = DelayQueue(self.clock)
        self.apps = FakeApps(self.clock)
        self.publisher = RecordingPublisher(fail=publisher_fails)
        self.drift_checks: list[dict] = []  # one per ending, delayed (records.py)
        self.worker = RolloutWorker(
            self.store, self.queue, self.apps, self.apps, self.publisher, clock=self.clock,
            budget_s=budget_s, sleep=self.clock.advance, monotonic=self.clock.monotonic,
            on_saved=on_saved, recover=lambda deployment: ensure_recorded(self.store, deployment),
        )

    def push(self, target, tag, seed, rollout=None, after_s: float = 1.0):
        self.clock.advance(after_s)
        d = push_deployment(target, tag, seed, self.clock(), rollout or fast())
        record(self.store, self.queue, d)
        return d

    def drain(self, limit: int = 500) -> int:
        """Deliver messages like the Functions host: a raise makes the message reappear 5 s later
        with a higher dequeue count; the last delivery is the worker's to settle."""
        counts: dict[int, int] = {}
        handled = 0
        pending: list[tuple[dict, int]] = []
        for _ in range(limit):
            if pending:
                message, count = pending.pop(0)
            else:
                message = self.queue.pop()
                count = 1
                if message is None:
                    return handled
                if drift_target_key(message) is not None:  # the reconciler's, routed by entrypoints
                    self.drift_checks.append(message)
                    continue
            try:
                self.worker.handle_message(message, count)
            except Killed:
                self.clock.advance(5)
                pending.append((message, count + 1))
            except Exception:
                assert count < MAX_DEQUEUE, "the worker let a message die on its last delivery"
                self.clock.advance(5)
                pending.append((message, count + 1))
            handled += 1
        raise AssertionError("queue never drained")

    def get(self, d):
        return self.store.get_deployment(d.id)

    def phases(self, d) -> list[str]:
        out: list[str] = []
        for e in self.store.list_events(d.id):
            if not out or out[-1] != e.phase.value:
                out.append(e.phase.value)
        return out

    def story(self, d) -> str:
        return "\n".join(f"{e.phase.value}: {e.message}" for e in self.store.list_events(d.id))

    def traffic_calls(self) -> list[dict]:
        return [c[1] for c in self.apps.calls if c[0] == "traffic"]


HAPPY = ["queued", "creating_revision", "waiting_ready", "smoke_testing", "shifting", "verifying",
         "succeeded"]


# ------------------------------------------------------------------------ happy path
def test_healthy_push_goes_live_and_the_history_tells_how():
    h = Harness()
    target = h.apps.add_app("orders", extra=2)
    d = h.push(target, "1.4.2", "a")
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    assert h.phases(d) == HAPPY
    assert done.revision.startswith("orders--v1-4-2-")
    app = h.apps.app(target)
    assert app.traffic == {done.revision: 100}
    # created pinned beside what served, so it started at 0 %
    create = next(c for c in h.apps.calls if c[0] == "create")
    assert create[2] == {"orders--first": 100}
    # keep_previous=1: the one that served before stays warm, the older ones are deactivated
    active = {r.name for r in app.revisions if r.active}
    assert active == {done.revision, "orders--first"}
    assert "kept warm for rollback: orders--first" in done.reason
    state = h.store.get_app_state(target)
    assert (state.live_revision, state.live_tag, state.live_deployment_id) == (done.revision, "1.4.2", d.id)
    assert state.active_deployment_id == "" and d.digest not in state.inflight_digests
    assert state.last_phase == "succeeded"
    assert h.publisher.events == [("AcrDeploy.Deployment.Succeeded", d.id, "succeeded")]
    smoke = [e for e in h.store.list_events(d.id) if e.data.get("check")]
    assert smoke and smoke[0].data["status"] == 200 and "latency_ms" in smoke[0].data


def test_push_to_live_needs_no_queue_hop_when_nothing_waits():
    h = Harness()
    target = h.apps.add_app("fast")
    d = h.push(target, "v2", "b")
    assert h.drain() == 1  # the start message alone carried it to the end
    assert h.get(d).phase == Phase.SUCCEEDED
    assert [m["target_key"] for m in h.drift_checks] == [target.key]  # and one drift check after it


def test_slow_start_up_polls_inline_then_by_delayed_messages():
    h = Harness(budget_s=1.0)
    h.apps.polls_to_ready = 15  # 5 inline ticks, then 2 s messages (ready_timeout 30 s)
    target = h.apps.add_app("slow")
    d = h.push(target, "v1", "c")
    h.drain()
    assert h.get(d).phase == Phase.SUCCEEDED
    delays = [delay for m, delay in h.queue.sent if delay > 0 and drift_target_key(m) is None]
    assert delays and max(delays) <= 2.0  # waits were messages, each at most a poll interval


def test_single_mode_is_refused_with_the_reason():
    h = Harness()
    target = h.apps.add_app("single", mode="Single")
    d = h.push(target, "v1", "d")
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.FAILED
    assert "Single revision mode" in done.reason and "allow_single_mode_switch" in done.reason
    assert not any(c[0] == "create" for c in h.apps.calls)
    assert h.store.get_app_state(target).active_deployment_id == ""


def test_single_mode_switches_when_the_rule_allows():
    h = Harness()
    target = h.apps.add_app("single2", mode="Single")
    d = h.push(target, "v1", "e", rollout=fast(allow_single_mode_switch=True))
    h.drain()
    assert h.get(d).phase == Phase.SUCCEEDED, h.story(d)
    create = next(c for c in h.apps.calls if c[0] == "create")
    assert create[3] is True and create[2] == {"single2--first": 100}
    assert h.apps.app(target).mode == "Multiple"


# ------------------------------------------------------------------------ failures before traffic
def test_failing_smoke_checks_never_get_traffic_and_are_deactivated():
    h = Harness()
    target = h.apps.add_app("smoky")
    d = push_deployment(target, "v2", "f", h.clock(), fast())
    h.apps.behaviours[d.image] = {"status": 503}
    record(h.store, h.queue, d)
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.FAILED
    assert h.phases(d) == ["queued", "creating_revision", "waiting_ready", "smoke_testing", "failed"]
    assert h.traffic_calls() == []  # traffic was never touched
    assert h.apps.app(target).traffic == {"smoky--first": 100}
    assert not next(r for r in h.apps.app(target).revisions if r.name == done.revision).active
    attempts = [e for e in h.store.list_events(d.id) if e.data.get("check")]
    assert len(attempts) == 3  # 1 try + retries=2, each recorded
    assert all(e.data["status"] == 503 and "HTTP 503" in e.data["excerpt"] for e in attempts)
    assert "never received traffic" in done.reason and f"{done.revision} deactivated" in done.reason
    assert h.publisher.events[-1][0] == "AcrDeploy.Deployment.Failed"
    # the back-off between attempts was a delayed message, not a sleep
    assert any(delay >= 1.0 for _, delay in h.queue.sent)


def test_revision_that_fails_to_start_is_failed_and_deactivated():
    h = Harness()
    target = h.apps.add_app("crashy")
    d = push_deployment(target, "v2", "g", h.clock(), fast())
    h.apps.failing_images.add(d.image)
    record(h.store, h.queue, d)
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.FAILED
    assert "failed to start: container exited with code 1" in done.reason
    assert h.traffic_calls() == []


def test_revision_not_ready_in_time_fails():
    h = Harness(budget_s=1.0)
    h.apps.polls_to_ready = 10_000
    target = h.apps.add_app("never")
    d = h.push(target, "v1", "h", rollout=fast(ready_timeout_s=20.0))
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.FAILED and "not ready within 20 s" in done.reason
    assert "provisioning Provisioning" in done.reason


def test_permanent_azure_error_fails_at_once_with_the_service_message():
    h = Harness()
    target = h.apps.add_app("forbidden")
    d = h.push(target, "v1", "i")
    original = h.apps.create_revision

    def refuse(*args, **kwargs):
        raise PermanentAzureError("(AuthorizationFailed) The client does not have authorization", 403)

    h.apps.create_revision = refuse
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.FAILED
    assert "Azure refused: (AuthorizationFailed)" in done.reason
    assert h.store.get_app_state(target).active_deployment_id == ""
    h.apps.create_revision = original


def test_transient_errors_are_retried_with_back_off_and_recorded():
    h = Harness()
    target = h.apps.add_app("busy")
    d = h.push(target, "v1", "j")
    h.apps.faults = [TransientAzureError("429 Too Many Requests", retry_after_s=3.0),
                     TransientAzureError("500 Internal Server Error")]
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    notes = [e.message for e in h.store.list_events(d.id) if "Azure is busy" in e.message]
    assert len(notes) == 2 and "retry 1 in 3 s" in notes[0]
    assert any(delay == 3.0 for _, delay in h.queue.sent)


def test_every_fifth_call_failing_still_ends_correctly():
    h = Harness()
    targets = [h.apps.add_app(f"flaky{i}") for i in range(3)]
    h.apps.fault_every = (5, TransientAzureError("503 Service Unavailable"))
    ds = [h.push(t, "v9", str(i)) for i, t in enumerate(targets)]
    h.drain()
    for d in ds:
        done = h.get(d)
        assert done.phase == Phase.SUCCEEDED, h.story(d)
        assert h.apps.app(d.target).traffic == {done.revision: 100}


def test_too_many_transient_errors_give_up():
    h = Harness()
    target = h.apps.add_app("down")
    d = h.push(target, "v1", "k")
    h.apps.faults = [TransientAzureError("500") for _ in range(50)]
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.FAILED and "Azure kept failing" in done.reason


# ------------------------------------------------------------------------ canary and rollback
def test_canary_failing_at_50_percent_is_rolled_back():
    h = Harness()
    target = h.apps.add_app("canary")
    d = push_deployment(target, "v2", "l", h.clock(), fast(**CANARY))
    # 1 smoke request + 10 verify passes at 10 % (1 of 10 app requests) stay under fail_after
    h.apps.behaviours[d.image] = {"fail_after": 3}
    record(h.store, h.queue, d)
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.ROLLED_BACK, h.story(d)
    assert h.phases(d) == ["queued", "creating_revision", "waiting_ready", "smoke_testing",
                           "shifting", "verifying", "shifting", "verifying", "rolled_back"]
    assert h.traffic_calls() == [
        {"canary--first": 90, done.revision: 10},
        {"canary--first": 50, done.revision: 50},
        {"canary--first": 100},
    ]
    assert "verification failed at 50 %" in done.reason
    assert "traffic back to canary--first 100 %" in done.reason
    assert not next(r for r in h.apps.app(target).revisions if r.name == done.revision).active
    state = h.store.get_app_state(target)
    assert state.live_revision == "" and state.active_deployment_id == ""
    assert h.publisher.events[-1][0] == "AcrDeploy.Deployment.RolledBack"
    # the bake between steps was a delayed message of bake_s
    assert any(delay == 30.0 for m, delay in h.queue.sent if drift_target_key(m) is None)


def test_healthy_canary_walks_every_step():
    h = Harness()
    target = h.apps.add_app("canary2")
    d = h.push(target, "v2", "m", rollout=fast(**CANARY))
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    assert [c.get(done.revision) for c in h.traffic_calls()] == [10, 50, 100]


def test_canary_over_several_serving_revisions_keeps_their_proportions():
    h = Harness()
    target = h.apps.add_app("split", extra=1)
    h.apps.app(target).traffic = {"split--old0": 25, "split--first": 75}
    d = h.push(target, "v2", "n", rollout=fast(**CANARY))
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    first = h.traffic_calls()[0]
    # 22.5 / 67.5: the tie in remainders goes to the earlier entry, and nothing is lost
    assert first == {"split--old0": 23, "split--first": 67, done.revision: 10}
    # both previously-serving revisions kept? keep_previous=1 keeps the heavier one
    active = {r.name for r in h.apps.app(target).revisions if r.active}
    assert active == {done.revision, "split--first"}


def test_deadline_during_bake_rolls_back_via_the_sweeper():
    h = Harness()
    target = h.apps.add_app("late")
    d = h.push(target, "v2", "o", rollout=fast(**dict(CANARY, bake_s=500.0), deadline_s=120.0))
    # deliver until it is baking at 10 %, then lose the wake-up message
    for _ in range(5):
        message = h.queue.pop()
        if message is None:
            break
        h.worker.handle_message(message, 1)
        if h.get(d).phase == Phase.VERIFYING:
            break
    assert h.get(d).phase == Phase.VERIFYING
    h.queue._heap.clear()
    h.clock.advance(200)
    counts = h.worker.sweep()
    assert counts["expired"] == 1
    done = h.get(d)
    assert done.phase == Phase.ROLLED_BACK and "deadline passed (120 s) while verifying" in done.reason
    assert h.apps.app(target).traffic == {"late--first": 100}


# ------------------------------------------------------------------------ newest push wins
def test_newer_push_supersedes_one_still_starting():
    h = Harness(budget_s=1.0)
    h.apps.polls_to_ready = 20  # both take a while to start
    target = h.apps.add_app("race")
    old = h.push(target, "v1", "p")
    h.worker.handle_message(h.queue.pop(), 1)  # old takes the app and creates its revision
    assert h.get(old).phase == Phase.WAITING_READY
    new = h.push(target, "v2", "q")
    h.drain()
    done_old, done_new = h.get(old), h.get(new)
    assert done_old.phase == Phase.SUPERSEDED, h.story(old)
    assert f"superseded by newer deployment {new.id} before its traffic shift" in done_old.reason
    assert done_new.phase == Phase.SUCCEEDED, h.story(new)
    assert h.apps.app(target).traffic == {done_new.revision: 100}
    assert not next(r for r in h.apps.app(target).revisions if r.name == done_old.revision).active
    assert h.store.get_app_state(target).live_deployment_id == new.id
    assert all(e[1] != old.id for e in h.publisher.events)  # superseded is not announced


def test_older_push_arriving_late_is_superseded_before_it_starts():
    h = Harness()
    target = h.apps.add_app("late2")
    old = push_deployment(target, "v1", "r", h.clock(), fast())
    h.clock.advance(2)
    new = push_deployment(target, "v2", "s", h.clock(), fast())
    record(h.store, h.queue, new)
    h.drain()
    record(h.store, h.queue, old)  # delivered out of order, after the newer one went live
    h.drain()
    assert h.get(new).phase == Phase.SUCCEEDED
    assert h.get(old).phase == Phase.SUPERSEDED
    assert h.phases(old) == ["queued", "superseded"]
    assert h.store.get_app_state(target).live_deployment_id == new.id


def test_a_rollout_already_shifting_finishes_before_the_newer_one_starts():
    h = Harness()
    target = h.apps.add_app("shifting")
    old = h.push(target, "v1", "t", rollout=fast(**CANARY))
    for _ in range(5):
        h.worker.handle_message(h.queue.pop(), 1)
        if h.get(old).phase == Phase.VERIFYING:
            break
    new = h.push(target, "v2", "u")
    h.drain()
    done_old, done_new = h.get(old), h.get(new)
    assert done_old.phase == Phase.SUCCEEDED, h.story(old)
    assert done_new.phase == Phase.SUCCEEDED, h.story(new)
    assert any("waiting for" in e.message for e in h.store.list_events(new.id))
    assert done_new.previous_traffic == {done_old.revision: 100}
    assert h.apps.app(target).traffic == {done_new.revision: 100}
    old_end = h.store.list_events(old.id)[-1].at
    took = next(e for e in h.store.list_events(new.id) if e.phase == Phase.CREATING_REVISION)
    assert took.at >= old_end


# ------------------------------------------------------------------------ delivery semantics
def test_duplicate_messages_deploy_once():
    h = Harness()
    target = h.apps.add_app("dupes")
    d = h.push(target, "v1", "v")
    for _ in range(4):
        h.queue.send(start_message(d))
    h.drain()
    assert h.get(d).phase == Phase.SUCCEEDED
    assert len([c for c in h.apps.calls if c[0] == "create"]) == 1
    assert h.phases(d) == HAPPY
    assert len(h.publisher.events) == 1


def test_stale_wake_up_is_dropped():
    h = Harness()
    target = h.apps.add_app("stale")
    d = h.push(target, "v1", "w")
    h.drain()
    before = len(h.store.list_events(d.id))
    h.worker.handle_message({"deployment_id": d.id, "wake": -1}, 1)
    h.worker.handle_message({"deployment_id": "nope"}, 1)
    h.worker.handle_message({}, 1)
    assert len(h.store.list_events(d.id)) == before


@pytest.mark.parametrize("crash_at", range(1, 12))
def test_a_worker_killed_after_any_step_resumes_to_the_same_end(crash_at):
    saves = {"n": 0}

    def hook(_d):
        saves["n"] += 1
        if saves["n"] == crash_at:
            raise Killed()

    h = Harness(on_saved=hook)
    target = h.apps.add_app("phoenix", extra=1)
    d = h.push(target, "v2", "x", rollout=fast(**CANARY))
    h.drain()
    done = h.get(d)
    assert saves["n"] >= crash_at
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    assert h.apps.app(target).traffic == {done.revision: 100}
    assert [c.get(done.revision) for c in h.traffic_calls()][-1] == 100
    state = h.store.get_app_state(target)
    assert state.active_deployment_id == "" and state.live_revision == done.revision
    assert sum(1 for p in h.phases(d) if p == "succeeded") == 1


def test_a_message_that_keeps_failing_ends_as_a_recorded_failure():
    h = Harness()
    target = h.apps.add_app("poison")
    d = h.push(target, "v1", "y")

    class Broken:
        def probe(self, base_url, check):
            raise RuntimeError("probe exploded")

    h.worker = h.worker.with_ports(probe=Broken())
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.FAILED
    assert f"a step kept failing ({MAX_DEQUEUE} deliveries): RuntimeError: probe exploded" in done.reason
    assert f"{done.revision} deactivated" in done.reason
    assert h.store.get_app_state(target).active_deployment_id == ""
    assert h.publisher.events[-1][0] == "AcrDeploy.Deployment.Failed"


def test_publishing_failures_never_fail_a_deployment():
    h = Harness(publisher_fails=True)
    target = h.apps.add_app("pub")
    d = h.push(target, "v1", "z")
    h.drain()
    assert h.get(d).phase == Phase.SUCCEEDED
    assert h.publisher.events


def test_start_message_for_an_unrecorded_deployment_is_recorded_then_run():
    h = Harness()
    target = h.apps.add_app("orphan")
    d = push_deployment(target, "v1", "1", h.clock(), fast())
    h.queue.send(start_message(d))  # intake died after enqueueing
    h.drain()
    done = h.get(d)
    assert done is not None and done.phase == Phase.SUCCEEDED, done and h.story(d)
    assert "recorded by the rollout worker" in h.store.list_events(d.id)[0].message


# ------------------------------------------------------------------------ sweeper
def test_sweeper_resends_a_lost_message_and_frees_apps_of_finished_holders():
    h = Harness()
    target = h.apps.add_app("lost")
    d = h.push(target, "v1", "2")
    h.queue._heap.clear()  # the start message is lost
    h.clock.advance(10)
    assert h.worker.sweep()["resent"] == 0  # not stale yet
    h.clock.advance(200)
    assert h.worker.sweep()["resent"] == 1
    h.drain()
    assert h.get(d).phase == Phase.SUCCEEDED
    # a finished deployment that crashed before freeing the app
    from dataclasses import replace

    state = h.store.get_app_state(target)
    h.store.save_app_state(replace(state, active_deployment_id=d.id))
    assert h.worker.sweep()["released"] == 1
    assert h.store.get_app_state(target).active_deployment_id == ""


def test_sweeper_fails_a_queued_deployment_past_its_deadline():
    h = Harness()
    target = h.apps.add_app("ancient")
    d = h.push(target, "v1", "3", rollout=fast(deadline_s=60.0))
    h.queue._heap.clear()
    h.clock.advance(61)
    h.worker.sweep()
    done = h.get(d)
    assert done.phase == Phase.FAILED and "deadline passed (60 s) while queued" in done.reason
    assert d.digest not in h.store.get_app_state(target).inflight_digests


# ------------------------------------------------------------------------ manual rollback
def _live_twice(h, app="rb"):
    target = h.apps.add_app(app)
    first = h.push(target, "v1", "4")
    h.drain()
    second = h.push(target, "v2", "5")
    h.drain()
    return target, h.get(first), h.get(second)


def test_manual_rollback_returns_to_the_previous_revision():
    h = Harness()
    target, first, second = _live_twice(h)
    rb = h.worker.request_rollback("rb", requested_by="alice")
    assert rb.kind.value == "rollback" and rb.revision == first.revision and rb.tag == "v1"
    h.drain()
    done = h.get(rb)
    assert done.phase == Phase.SUCCEEDED, h.story(rb)
    assert h.phases(rb) == ["queued", "waiting_ready", "smoke_testing", "shifting", "verifying", "succeeded"]
    assert h.apps.app(target).traffic == {first.revision: 100}
    state = h.store.get_app_state(target)
    assert state.live_revision == first.revision and state.live_deployment_id == rb.id
    assert h.publisher.events[-1] == ("AcrDeploy.Deployment.RolledBack", rb.id, "succeeded")
    assert "requested by alice" in h.store.list_events(rb.id)[0].message
    # the revision rolled away from stays warm for a roll-forward
    assert next(r for r in h.apps.app(target).revisions if r.name == second.revision).active


def test_manual_rollback_to_a_named_inactive_revision_activates_it():
    h = Harness()
    target, first, second = _live_twice(h, "rb2")
    rb = h.worker.request_rollback("rb2", to_revision="first")
    h.drain()
    assert h.get(rb).phase == Phase.SUCCEEDED, h.story(rb)
    assert h.apps.app(target).traffic == {"rb2--first": 100}
    assert ("active", "rb2--first", True) in h.apps.calls


def test_manual_rollback_errors():
    h = Harness()
    with pytest.raises(NotFoundError):
        h.worker.request_rollback("ghost")
    target, first, second = _live_twice(h, "rb3")
    with pytest.raises(NotFoundError):
        h.worker.request_rollback("rb3", to_revision="rb3--nope")
    with pytest.raises(InvalidRequestError):
        h.worker.request_rollback("rb3", to_revision="Bad Name!")
    with pytest.raises(ConflictError):
        h.worker.request_rollback("rb3", to_revision=second.revision)  # already serves everything
    h.apps.add_app("rb3", rg="other")
    from shared.domain.model import AppState, Target
    h.store.save_app_state(AppState(target=Target(target.subscription_id, "other", "rb3")))
    with pytest.raises(InvalidRequestError):
        h.worker.request_rollback("rb3")
    lonely = h.apps.add_app("lonely")
    h.push(lonely, "v1", "6")
    h.drain()
    for r in h.apps.app(lonely).revisions:
        if r.name == "lonely--first":
            r.fails = True
    with pytest.raises(ConflictError):
        h.worker.request_rollback("lonely")


def test_failed_rollback_smoke_leaves_traffic_where_it_was():
    h = Harness()
    target, first, second = _live_twice(h, "rb4")
    h.apps.behaviours[first.image] = {"status": 500}
    rb = h.worker.request_rollback("rb4")
    h.drain()
    done = h.get(rb)
    assert done.phase == Phase.FAILED and "smoke check failed" in done.reason
    assert h.apps.app(target).traffic == {second.revision: 100}
    # it was active (kept warm) before the rollback: left as it was
    assert next(r for r in h.apps.app(target).revisions if r.name == first.revision).active
