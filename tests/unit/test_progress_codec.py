"""The stored form of a rollout's progress: rows written before the typed progress (schema 1, no
version) read into it, and a worker finishes an ending such a row recorded before a crash."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime, timezone

import pytest

from shared.domain.analysis import AnalysisRun
from shared.domain.model import Phase, deployment_from_dict, deployment_to_dict
from shared.domain.progress import (
    BlueGreen, CheckProgress, CheckRun, Ending, EndingKind, RolloutProgress, TrafficRequest,
)
from shared.domain.progress_codec import SCHEMA, progress_from_dict, progress_to_dict
from tests.unit.test_rollout_fakes import CANARY, fast
from tests.unit.test_rollout_worker import Harness

AT = datetime(2025, 5, 1, 12, 0, 0, tzinfo=timezone.utc)

# Literally what the untyped worker wrote (rollout_phases / rollout_checks / rollout_endings /
# rollout_records): every key it used, as it spelt them, with values as they were stored.
SCHEMA_1 = {
    "waiting_for": "20250501115959-aaaaaaaaaa",
    "app_fqdn": "orders.example.io",
    "suffix": "v1-4-2-3f9a0c12",
    "switch_mode": True,
    "ready_by": "2025-05-01T12:05:00+00:00",
    "polls": 7,
    "activated": True,
    "fqdn": "orders--v1-4-2-3f9a0c12.example.io",
    "smoke": {"index": 1, "passes": 0, "failures": 2, "attempts": 5},
    "smoke_retry_at": "2025-05-01T12:00:04+00:00",
    "verify": {"index": 0, "passes": 3, "failures": 0, "attempts": 3},
    "verify_after": "2025-05-01T12:00:30+00:00",
    "traffic_requested": {"step": 1, "table": {"orders--first": 50, "orders--v1-4-2-3f9a0c12": 50},
                          "at": "2025-05-01T12:00:40+00:00", "checks": 2, "patches": 1},
    "wake": 4,
    "wake_at": "2025-05-01T12:00:41+00:00",
    "ending": {"kind": "succeed", "reason": "", "summary": "10 attempt(s) against https://orders.example.io",
               "at": "2025-05-01T12:01:00+00:00", "doomed": ["orders--old"], "kept": ["orders--first"],
               "problems": []},
    "allow_downgrade": True,
}


def test_a_schema_1_document_reads_into_the_typed_progress():
    progress, allow_downgrade, extra = progress_from_dict(SCHEMA_1)
    assert allow_downgrade is True and extra == {}
    assert progress == RolloutProgress(
        waiting_for="20250501115959-aaaaaaaaaa", app_fqdn="orders.example.io", suffix="v1-4-2-3f9a0c12",
        switch_mode=True, ready_by=datetime(2025, 5, 1, 12, 5, tzinfo=timezone.utc), polls=7, activated=True,
        fqdn="orders--v1-4-2-3f9a0c12.example.io",
        smoke=CheckProgress(CheckRun(1, 0, 2, 5), datetime(2025, 5, 1, 12, 0, 4, tzinfo=timezone.utc)),
        verify=CheckProgress(CheckRun(0, 3, 0, 3)),
        verify_after=datetime(2025, 5, 1, 12, 0, 30, tzinfo=timezone.utc),
        traffic_requested=TrafficRequest(1, {"orders--first": 50, "orders--v1-4-2-3f9a0c12": 50},
                                         datetime(2025, 5, 1, 12, 0, 40, tzinfo=timezone.utc), 2, 1),
        wake=4, wake_at=datetime(2025, 5, 1, 12, 0, 41, tzinfo=timezone.utc),
        ending=Ending(EndingKind.SUCCEED, "", "10 attempt(s) against https://orders.example.io",
                      datetime(2025, 5, 1, 12, 1, tzinfo=timezone.utc), ("orders--old",), ("orders--first",)),
    )
    # every field of the progress has a key in the old document: none was left behind (but the
    # facts added since, which an older worker keeps as keys it does not own)
    assert all(getattr(progress, f.name) != f.default for f in fields(RolloutProgress) if f.name not in SINCE_SCHEMA_2)


SINCE_SCHEMA_2 = {"analysis", "controls", "no_checks", "pull_retries", "create_after", "unknown_state", "blue_green"}  # controls: tests/unit/test_release_controls.py


def test_facts_added_after_schema_1_round_trip():
    progress = RolloutProgress(
        no_checks=True, pull_retries=2, create_after=AT, unknown_state="running Hibernating",
        smoke=CheckProgress(CheckRun(0, 0, 0, 0), None, warm_until=AT, warmed=True, warming=3))
    assert progress_from_dict(progress_to_dict(progress))[0] == progress


def test_a_canary_analysis_under_way_survives_the_stored_form():
    run = AnalysisRun(datetime(2025, 5, 1, 12, 1, tzinfo=timezone.utc), passed=1, failed=0, inconclusive=2)
    doc = progress_to_dict(RolloutProgress(analysis=run))
    assert progress_from_dict(doc)[0].analysis == run
    assert progress_from_dict({"analysis": {"window_start": "not a date"}})[0].analysis is None


def test_blue_green_progress_round_trips():
    progress = RolloutProgress(blue_green=BlueGreen(labels_mode=True, before={"blue": "orders--v1"}))
    doc = progress_to_dict(progress)
    assert doc["blue_green"] == {"labels_mode": True, "before": {"blue": "orders--v1"}}
    assert progress_from_dict(doc)[0] == progress
    assert progress_from_dict({"blue_green": "garbage"})[0].blue_green is None


def test_writing_keeps_the_schema_1_keys_and_adds_the_version():
    progress, allow_downgrade, extra = progress_from_dict(SCHEMA_1)
    assert progress_to_dict(progress, allow_downgrade, extra) == {**SCHEMA_1, "v": SCHEMA}
    assert progress_to_dict(RolloutProgress()) == {"v": SCHEMA}  # nothing set: nothing but the version


@pytest.mark.parametrize("kind", ["roll_back", "fail", "give_up"])
def test_the_other_endings_of_schema_1_carry_their_reason(kind):
    doc = {"ending": {"kind": kind, "reason": "verification failed at 10 %: app: HTTP 503"}}
    ending = progress_from_dict(doc)[0].ending
    assert ending == Ending(EndingKind(kind), "verification failed at 10 %: app: HTTP 503")
    assert progress_to_dict(progress_from_dict(doc)[0]) == {**doc, "v": SCHEMA}


def test_an_ending_of_an_unknown_kind_is_still_an_ending_that_names_it():
    ending = progress_from_dict({"ending": {"kind": "teleport", "reason": "why not"}})[0].ending
    assert ending is not None and ending.kind == EndingKind.UNKNOWN
    assert ending.reason == "unknown recorded ending 'teleport': why not"


def test_odd_values_read_as_absent_and_unknown_keys_are_kept():
    progress, allow_downgrade, extra = progress_from_dict({
        "ready_by": "not a date", "polls": "x", "wake": "3", "smoke": "broken", "traffic_requested": {"step": 0},
        "ending": {"reason": "no kind"}, "from_a_newer_release": {"k": 1},
    })
    assert progress == RolloutProgress(wake=3) and allow_downgrade is False
    assert extra == {"from_a_newer_release": {"k": 1}}
    assert progress_to_dict(progress, extra=extra) == {"v": SCHEMA, "wake": 3, "from_a_newer_release": {"k": 1}}


def test_a_misspelt_progress_fact_is_an_error_not_a_silent_miss():
    with pytest.raises(TypeError):
        replace(RolloutProgress(), wake_att=AT)


def test_a_deployment_row_round_trips_through_the_codec():
    h = Harness()
    d = h.push(h.apps.add_app("trip"), "v1", "r")
    d = d.with_progress(wake=2, wake_at=AT, ending=Ending(EndingKind.FAIL, "smoke check failed"))
    back = deployment_from_dict(deployment_to_dict(replace(d, allow_downgrade=True)))
    assert back.progress == d.progress and back.allow_downgrade is True and back.data == {}


def test_an_ending_recorded_by_the_old_code_before_a_crash_is_finished_not_rerun():
    """A canary at 10 % whose verification failed: the old worker recorded `data["ending"]`, put the
    traffic back, and died before recording ROLLED_BACK. This release reads that row and finishes
    the roll-back with the reason decided then, without running the verify checks again."""
    h = Harness()
    target = h.apps.add_app("legacy")
    d = h.push(target, "v2", "l", rollout=fast(**CANARY))
    h.worker.handle_message(h.queue.pop())  # to 10 %, then the 30 s bake is a delayed message
    at_ten = h.get(d)
    assert at_ten.phase == Phase.VERIFYING and h.apps.app(target).traffic == {"legacy--first": 90, at_ten.revision: 10}
    h.apps.set_traffic(target, {"legacy--first": 100})  # the old worker's roll-back reached Azure
    row = deployment_to_dict(at_ten)
    row["data"] = {  # ... and this is the record it left (schema 1: no version)
        "app_fqdn": row["data"]["app_fqdn"], "fqdn": row["data"]["fqdn"], "suffix": row["data"]["suffix"],
        "switch_mode": False, "verify_after": "2025-05-01T12:00:30+00:00", "wake": 1,
        "wake_at": "2025-05-01T12:00:31+00:00",
        "ending": {"kind": "roll_back", "reason": "verification failed at 10 %: app: HTTP 500: boom"},
    }
    h.store.save_deployment(deployment_from_dict(row, etag=at_ten.etag))
    attempts_before = len([e for e in h.store.list_events(d.id) if e.data.get("check")])
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.ROLLED_BACK, h.story(d)
    assert done.reason.startswith("verification failed at 10 %: app: HTTP 500: boom; traffic back to legacy--first 100 %")
    assert len([e for e in h.store.list_events(d.id) if e.data.get("check")]) == attempts_before
    assert done.progress.ending is None and h.apps.app(target).traffic == {"legacy--first": 100}
    assert [e.phase for e in h.store.list_events(d.id)].count(Phase.ROLLED_BACK) == 1
    assert h.store.get_app_state(target).active_deployment_id == ""
