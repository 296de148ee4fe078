"""The rollout against the service's less tidy answers, with the fakes and a virtual clock: pull failures
retried a bounded number of times, apps the function cannot reach, and `checks: none`."""

from __future__ import annotations

from shared.domain.model import CheckMode, Phase
from shared.domain.reachability import AppAccess
from tests.unit.test_rollout_fakes import fast
from tests.unit.test_rollout_worker import Harness

MANIFEST = ("Field 'template.containers.app.image' is invalid with details: 'Invalid value: "
            "\"reg.io/app@sha256:ab\": GET https:: MANIFEST_UNKNOWN: manifest unknown; map[]'")


def _created(h: Harness) -> list[str]:
    return [c[1] for c in h.apps.calls if c[0] == "create"]


def _pull_fails(app: str, queued_s: float = 0.0):
    """A push whose image the app's region cannot pull, delivered `queued_s` after the push."""
    h = Harness()
    h.apps.failure_text = MANIFEST
    d = h.push(h.apps.add_app(app), "v2", app[0])
    h.apps.failing_images.add(d.image)
    h.clock.advance(queued_s)
    h.drain()
    return h, d


def test_a_pull_failure_is_retried_three_times_with_new_revisions_then_fails():
    h, d = _pull_fails("geo")
    done = h.get(d)
    assert done.phase == Phase.FAILED, h.story(d)
    assert len(set(_created(h))) == 4 and done.revision == _created(h)[-1]
    assert h.phases(d) == ["queued"] + ["creating_revision", "waiting_ready"] * 4 + ["failed"]
    retries = [e for e in h.store.list_events(d.id) if e.data.get("pull_retry")]
    assert [e.data["pull_retry"] for e in retries] == [1, 2, 3]
    events = h.store.list_events(d.id)
    created = [next(e for e in events if e.seq > r.seq and e.phase == Phase.WAITING_READY) for r in retries]
    # each new revision after its back-off: 15 s, 30 s, 60 s
    assert [(c.at - r.at).total_seconds() for r, c in zip(retries, created)] == [15.0, 30.0, 60.0]
    assert "MANIFEST_UNKNOWN" in done.reason and h.traffic_calls() == []


def test_a_pull_failure_long_after_the_push_is_the_images_fault():
    h, d = _pull_fails("late", queued_s=400)  # a backlog: replication had minutes to finish
    assert h.get(d).phase == Phase.FAILED and len(_created(h)) == 1, h.story(d)


def test_other_start_failures_are_not_retried():
    h = Harness()
    target = h.apps.add_app("crash")
    d = h.push(target, "v2", "c")
    h.apps.failing_images.add(d.image)
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.FAILED and len(_created(h)) == 1
    assert "failed to start: container exited with code 1" in done.reason


def test_an_unreachable_app_fails_before_a_revision_and_checks_http_overrides_the_detection():
    h = Harness()
    target = h.apps.add_app("inside")
    h.apps.app(target).access = AppAccess(ingress="internal")
    d = h.push(target, "v2", "i")
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.FAILED and h.phases(d) == ["queued", "failed"], h.story(d)
    assert "internal" in done.reason and _created(h) == []
    forced = h.push(target, "v3", "f", rollout=fast(checks=CheckMode.HTTP))
    h.drain()
    assert h.get(forced).phase == Phase.SUCCEEDED, h.story(forced)


def test_a_bad_checks_tag_is_a_clear_failure():
    h = Harness()
    target = h.apps.add_app("typo")
    h.apps.app(target).tags = {"Acr-Deploy.Checks": "off"}
    d = h.push(target, "v2", "t")
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.FAILED and "checks must be one of auto, http, none, not 'off'" in done.reason


def test_checks_none_verifies_the_health_state_after_the_warm_up_and_never_probes():
    h = Harness()
    target = h.apps.add_app("quiet")
    h.apps.app(target).tags = {"acr-deploy.checks": "none"}
    h.apps.app(target).access = AppAccess(ingress="none")
    d = h.push(target, "v2", "q", rollout=fast(warmup_s=20.0))
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    assert h.apps.requests == {}  # not one HTTP request
    events = h.store.list_events(d.id)
    shifted = next(e for e in events if e.phase == Phase.VERIFYING)
    assert (events[-1].at - shifted.at).total_seconds() >= 20  # the verify window
    assert "smoke checks skipped (checks: none)" in h.story(d)


def test_checks_none_rolls_back_a_revision_that_fails_within_the_verify_window():
    target = None

    def break_it(saved):
        if saved.phase == Phase.VERIFYING and target is not None:
            for r in h.apps.app(target).revisions:
                if r.name == saved.revision:
                    r.fails = True

    h = Harness(on_saved=break_it)
    target = h.apps.add_app("flaky")
    h.apps.app(target).tags = {"acr-deploy.checks": "none"}
    d = h.push(target, "v2", "f", rollout=fast(warmup_s=20.0))
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.ROLLED_BACK, h.story(d)
    assert "verification failed at 100 %" in done.reason and "health Unhealthy" in done.reason
    assert h.apps.app(target).traffic == {"flaky--first": 100}
