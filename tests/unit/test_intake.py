"""Intake service on the in-memory fakes: accept, dedupe, skip, dismiss, recover."""

from __future__ import annotations

import threading

import pytest

from shared.adapters.memory import MemoryQueue, MemoryStore
from shared.domain.model import Phase, Target, deployment_from_dict
from shared.services.intake import IntakeService, ensure_recorded
from shared.settings import Settings
from tests.unit.intake_fakes import HOST, SUB, TOPIC, FakeRules, digest, event

SETTINGS = Settings.from_env({"ACR_DEPLOY_REGISTRIES": HOST})
TARGET = Target(SUB, "rg", "orders-api")


class CountingStore(MemoryStore):
    """MemoryStore that counts calls (each is one round trip in the Table adapter)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def get_app_state(self, target):
        self.calls.append("get_app_state")
        return super().get_app_state(target)

    def create_deployment(self, deployment, event, state):
        self.calls.append("create_deployment")
        return super().create_deployment(deployment, event, state)


@pytest.fixture
def store():
    return CountingStore()


@pytest.fixture
def queue():
    return MemoryQueue()


def service(store, queue, **rules_kwargs) -> IntakeService:
    return IntakeService(SETTINGS, FakeRules(**rules_kwargs), store, queue)


def test_accepted_push_is_enqueued_then_recorded_in_three_round_trips(store, queue):
    result = service(store, queue).handle(event("1.4.2", digest(7)))
    assert result.outcome == "accepted" and len(result.accepted) == 1
    dep_id = result.accepted[0]
    assert store.calls == ["get_app_state", "create_deployment"] and len(queue.messages) == 1  # 2 + 1 trips
    message, delay = queue.messages[0]
    assert (message["kind"], message["deployment_id"], delay) == ("advance", dep_id, 0.0)
    recorded = store.get_deployment(dep_id)
    assert recorded.phase == Phase.QUEUED
    assert recorded.image == f"{HOST}/orders-api@{digest(7)}" and recorded.tag == "1.4.2"
    assert recorded.pushed_by == "alice"
    assert [e.phase for e in store.list_events(dep_id)] == [Phase.QUEUED]
    state = store.get_app_state(TARGET)
    assert state.pending_deployment_id == dep_id and state.inflight_digests == (digest(7),)
    assert state.latest_version_key == "000001.000004.000002"
    assert result.to_dict()["targets"][0]["verdict"] == "accepted"


def test_redelivery_of_the_same_event_records_and_enqueues_nothing_new(store, queue):
    intake = service(store, queue)
    raw = event("1.0.0", digest(1))
    first = intake.handle(raw)
    again = intake.handle(raw)
    assert again.outcome == "accepted" and again.targets[0].verdict == "recorded"
    assert len(store.deployments) == 1 and len(queue.messages) == 1
    assert first.accepted == [again.targets[0].deployment_id]
    assert store.ignored == {}  # a redelivery is not a skip worth recording


def test_concurrent_duplicate_deliveries_yield_one_deployment(store, queue):
    intake = service(store, queue)
    raw = event("2.0.0", digest(2))
    barrier = threading.Barrier(8)
    results, errors = [], []

    def deliver():
        barrier.wait()
        try:
            results.append(intake.handle(raw))
        except Exception as exc:  # pragma: no cover - would fail the test below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert len(store.deployments) == 1
    (dep_id,) = store.deployments
    assert {m["deployment_id"] for m, _ in queue.messages} == {dep_id}  # extra copies name the same one
    assert sum(len(r.accepted) for r in results) == 1
    assert store.get_app_state(TARGET).inflight_digests == (digest(2),)


def test_second_tag_for_the_same_digest_does_not_deploy_again(store, queue):
    intake = service(store, queue)
    intake.handle(event("1.0.0", digest(3)))
    result = intake.handle(event("1.0.1", digest(3)))
    assert result.outcome == "skipped" and result.targets[0].verdict == "duplicate"
    assert len(store.deployments) == 1 and len(queue.messages) == 1
    (skip,) = store.ignored.values()
    assert skip.outcome == "skipped" and skip.app == "orders-api" and "duplicate" in skip.reason


def test_digest_already_live_is_a_duplicate(store, queue):
    from shared.domain.model import AppState

    store.save_app_state(AppState(target=TARGET, live_digest=digest(4), live_tag="1.0.0"))
    result = service(store, queue).handle(event("1.0.0-hotfix.1".replace("-hotfix.1", ""), digest(4)))
    assert result.targets[0].verdict == "duplicate" and "live" in result.targets[0].reason


def test_older_version_arriving_late_is_skipped_unless_downgrades_are_allowed(store, queue):
    intake = service(store, queue)
    intake.handle(event("1.10.0", digest(10), time="2024-05-01T12:00:05Z"))
    late = intake.handle(event("1.9.0", digest(9), time="2024-05-01T12:00:01Z"))
    assert late.outcome == "skipped" and late.targets[0].verdict == "older"
    assert any(i.outcome == "skipped" and "older" in i.reason for i in store.ignored.values())
    permissive = service(store, queue, allow_downgrade=True).handle(event("1.8.0", digest(8)))
    assert permissive.outcome == "accepted"
    assert store.get_app_state(TARGET).latest_version_key == "000001.000010.000000"  # max kept


def test_untrusted_registry_is_rejected_and_recorded(store, queue):
    result = service(store, queue).handle(event(host="evil.azurecr.io",
                                                 topic=TOPIC.replace("/demo", "/evil")))
    assert result.outcome == "rejected" and "not a trusted registry" in result.reason
    assert [i.outcome for i in store.ignored.values()] == ["rejected"]
    assert store.deployments == {} and queue.messages == []
    spoofed = service(store, queue).handle(event(topic=TOPIC.replace("/demo", "/evil")))
    assert spoofed.outcome == "rejected" and "resource" in spoofed.reason


def test_registries_from_the_rule_book_are_trusted(store, queue):
    intake = IntakeService(Settings.from_env({}), FakeRules(registries=(HOST,)), store, queue)
    assert intake.handle(event()).outcome == "accepted"


def test_ignored_and_unmatched_events_are_recorded_once_and_never_raise(store, queue):
    intake = service(store, queue)
    deleted = event()
    deleted["eventType"] = "Microsoft.ContainerRegistry.ImageDeleted"
    for _ in range(3):  # redelivered: recorded once
        assert intake.handle(deleted).outcome == "ignored"
    unmatched = intake.handle(event("latest"))
    assert unmatched.outcome == "ignored" and "not a semver release" in unmatched.reason
    assert sorted(i.outcome for i in store.ignored.values()) == ["ignored", "ignored"]
    assert intake.handle({"junk": True}).outcome == "rejected"

    class BrokenStore(MemoryStore):
        def record_ignored(self, item):
            raise OSError("storage down")

    assert service(BrokenStore(), queue).handle(deleted).outcome == "ignored"


def test_subscription_validation_returns_the_code(store, queue):
    raw = {"id": "v1", "topic": "/subscriptions/x", "subject": "", "eventType":
           "Microsoft.EventGrid.SubscriptionValidationEvent", "eventTime": "2024-01-01T00:00:00Z",
           "data": {"validationCode": "abc-123", "validationUrl": "https://x/?token=secret"}}
    result = service(store, queue).handle(raw)
    assert result.to_dict()["validation_response"] == {"validationResponse": "abc-123"}
    assert "secret" not in repr(store.ignored)


def test_fan_out_and_batches(store, queue):
    intake = service(store, queue, apps={"orders-api": ["orders-api", "orders-api-eu"]})
    results = intake.handle_batch([event("3.0.0", digest(30)), {"bad": 1},
                                   event("3.0.0", digest(30), schema="cloudevents")])
    assert [r.outcome for r in results] == ["accepted", "rejected", "skipped"]
    assert len(results[0].accepted) == 2 and len(store.deployments) == 2


def test_concurrent_pushes_of_one_digest_under_two_tags_deploy_once(store, queue):
    intake = service(store, queue)
    events = [event("4.0.0", digest(40)), event("4.0.0", digest(40))]  # two events, different ids
    barrier = threading.Barrier(2)

    def deliver(raw):
        barrier.wait()
        intake.handle(raw)

    threads = [threading.Thread(target=deliver, args=(raw,)) for raw in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(store.deployments) == 1


class CrashingStore(MemoryStore):
    """Dies (once) between the enqueue and the table write."""

    crash = True

    def create_deployment(self, deployment, event, state):
        if self.crash:
            self.crash = False
            raise RuntimeError("process died")
        return super().create_deployment(deployment, event, state)


def test_crash_between_enqueue_and_record_is_recovered_by_the_worker(queue):
    store = CrashingStore()
    intake = service(store, queue)
    raw = event("5.0.0", digest(50))
    with pytest.raises(RuntimeError):
        intake.handle(raw)  # storage failure: raised so Event Grid redelivers
    assert store.deployments == {} and len(queue.messages) == 1
    message = queue.messages[0][0]
    recovered = ensure_recorded(store, deployment_from_dict(message["deployment"]))
    assert recovered is not None and recovered.id == message["deployment_id"] and recovered.etag
    assert store.get_app_state(TARGET).pending_deployment_id == recovered.id
    assert ensure_recorded(store, recovered) .id == recovered.id  # idempotent
    again = intake.handle(raw)  # Event Grid's redelivery finds it recorded
    assert again.targets[0].verdict == "recorded" and len(queue.messages) == 1


def test_recovery_of_a_message_that_is_now_a_duplicate_returns_none(queue):
    store = CrashingStore()
    intake = service(store, queue)
    with pytest.raises(RuntimeError):
        intake.handle(event("6.0.0", digest(60)))
    orphan = deployment_from_dict(queue.messages[0][0]["deployment"])
    intake.handle(event("6.0.0", digest(60)))  # another event for the same digest got recorded meanwhile
    assert ensure_recorded(store, orphan) is None
    assert orphan.id not in store.deployments
    assert any(i.outcome == "skipped" for i in store.ignored.values())


from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=4), max_leaves=20)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["id", "eventType", "topic", "eventTime", "data", "subject"]), _json)
def test_handle_never_raises_for_junk_and_records_it(field, junk):
    store, queue = MemoryStore(), MemoryQueue()
    raw = event()
    raw[field] = junk
    result = service(store, queue).handle(raw)
    assert result.outcome in ("accepted", "ignored", "rejected", "skipped")
    if result.outcome in ("ignored", "rejected"):
        assert len(store.ignored) == 1 and queue.messages == []
