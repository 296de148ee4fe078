"""The pure readings of what the service reports: revision states, pull failures, the smoke checks'
warm-up and whether the function can reach an app."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import warmup
from shared.domain.model import CheckMode, SmokeCheck
from shared.domain.progress import CheckProgress, CheckRun
from shared.domain.reachability import (
    AppAccess, AuthState, effective_check_mode, parse_check_mode, refusal, unreachable_reasons,
)
from shared.domain.revision_state import Readiness, assess, is_pull_failure, may_retry_pull, pull_retry_delay_s

DEADLINE = "Deployment Progress Deadline Exceeded. 0/1 replicas ready."
MANIFEST = ("Field 'template.containers.web.image' is invalid with details: 'Invalid value: \"reg.io/web@sha256:ab\": "
            "GET https:: MANIFEST_UNKNOWN: manifest unknown; map[]'")


@pytest.mark.parametrize("provisioning, running, health, details, error, readiness", [
    ("Provisioned", "Running", "Healthy", "", "", Readiness.READY),
    ("Provisioned", "RunningAtMaxScale", "Healthy", "", "", Readiness.READY),
    ("provisioned", "running", "healthy", "", "", Readiness.READY),  # open strings: any case
    ("Provisioned", "ScaledToZero", "Healthy", "", "", Readiness.COLD),
    ("Provisioned", "ScaledToZero", "None", "", "", Readiness.COLD),
    ("Provisioning", "Activating", "None", "", "", Readiness.STARTING),
    ("Provisioned", "Activating", "None", "", "", Readiness.STARTING),  # a crash loop, before the deadline
    ("Provisioned", "Processing", "None", "", "", Readiness.STARTING),
    ("Provisioned", "Running", "None", "", "", Readiness.STARTING),  # health probes not passed yet
    ("Provisioned", "Running", "Unhealthy", "", "", Readiness.STARTING),  # unhealthy while it starts
    ("Provisioned", "Degraded", "Healthy", "", "", Readiness.STARTING),
    ("", "", "", "", "", Readiness.STARTING),
    ("Provisioned", "ActivationFailed", "Unhealthy", DEADLINE, "", Readiness.FAILED),
    ("Provisioned", "Running", "Unhealthy", DEADLINE, "", Readiness.FAILED),  # unhealthy after the deadline
    ("Failed", "Failed", "Unhealthy", "", MANIFEST, Readiness.FAILED),
    ("Provisioned", "Failed", "Unhealthy", "", "", Readiness.FAILED),
    ("Provisioned", "Hibernating", "Healthy", "", "", Readiness.UNKNOWN),
    ("Teleporting", "Running", "Healthy", "", "", Readiness.UNKNOWN),
    ("Provisioned", "Running", "Sparkling", "", "", Readiness.UNKNOWN),
])
def test_what_each_reported_state_means(provisioning, running, health, details, error, readiness):
    assert assess(provisioning, running, health, details, error).readiness == readiness


def test_a_failure_carries_the_services_own_words():
    assert assess("Provisioned", "ActivationFailed", "Unhealthy", DEADLINE).detail == DEADLINE
    assert assess("Failed", "Failed", "Unhealthy", "", MANIFEST).detail == MANIFEST
    assert assess("Provisioned", "Failed", "Unhealthy").detail == "provisioning Provisioned, running Failed"


def test_only_ready_and_cold_revisions_are_probed():
    assert {r for r in Readiness if r.probe} == {Readiness.READY, Readiness.COLD}


def test_pull_failures_are_retried_soon_after_the_push_and_a_bounded_number_of_times():
    assert is_pull_failure(MANIFEST) and is_pull_failure("Back-off pulling image: ErrImagePull")
    assert not is_pull_failure(DEADLINE) and not is_pull_failure("")
    assert [pull_retry_delay_s(n) for n in (1, 2, 3)] == [15.0, 30.0, 60.0]
    assert may_retry_pull(MANIFEST, 0, 5.0) and may_retry_pull(MANIFEST, 2, 100.0)
    assert not may_retry_pull(MANIFEST, 3, 5.0)  # three retries at most
    assert not may_retry_pull(MANIFEST, 0, 290.0)  # minutes after the push: the image's fault
    assert not may_retry_pull(DEADLINE, 0, 5.0)  # a crash loop is no pull failure


# --------------------------------------------------------------------------- warm-up

T = datetime(2025, 5, 1, 12, 0, tzinfo=timezone.utc)


def test_the_warm_up_starts_at_the_first_attempt_and_only_once():
    started = warmup.begin(CheckProgress(), 45.0, T)
    assert started.warm_until == T + timedelta(seconds=45)
    assert warmup.begin(started, 45.0, T + timedelta(seconds=10)) == started
    assert warmup.begin(CheckProgress(), 0.0, T).warm_until is None  # warmup: 0 turns it off
    mid_run = CheckProgress(CheckRun(0, 0, 1, 1))  # a run recorded before warm-ups existed
    assert warmup.begin(mid_run, 45.0, T) == mid_run


@pytest.mark.parametrize("ok, status, at_s, warmed, expected", [
    (False, None, 10, False, True),  # no answer: the replica is starting
    (False, 504, 44, False, True),  # the edge gave up waiting for the replica
    (False, 503, 10, False, False),  # an answer: the app's own
    (False, 500, 10, False, False),  # the app answered: its failure counts
    (False, 404, 10, False, False),
    (False, None, 45, False, False),  # the warm-up is over
    (False, None, 10, True, False),  # it answered before: failures count
    (True, 200, 10, False, False),
])
def test_which_failures_are_the_warm_ups(ok, status, at_s, warmed, expected):
    progress = CheckProgress(warm_until=T + timedelta(seconds=45), warmed=warmed)
    assert warmup.warming(progress, ok, status, T + timedelta(seconds=at_s)) is expected


def test_the_first_answer_ends_the_warm_up():
    progress = CheckProgress(warm_until=T + timedelta(seconds=45))
    progress = warmup.after(progress, False, None, T)
    assert progress.warming == 1 and not progress.warmed
    assert warmup.after(progress, False, 500, T).warmed
    assert warmup.after(progress, True, 200, T).warmed


def test_warm_up_attempts_are_spaced_within_the_warm_up():
    progress = CheckProgress(warm_until=T + timedelta(seconds=45))
    assert warmup.delay_s(SmokeCheck(backoff_s=0.1), progress, T) == 1.0
    assert warmup.delay_s(SmokeCheck(backoff_s=30.0), progress, T) == 5.0
    assert warmup.delay_s(SmokeCheck(backoff_s=2.0), progress, T + timedelta(seconds=44.5)) == 0.5


# --------------------------------------------------------------------------- reachability


@pytest.mark.parametrize("access, reason", [
    (AppAccess(ingress="none"), "no ingress"),
    (AppAccess(ingress="internal"), "internal"),
    (AppAccess(ip_allow_list=True), "IP allow-list"),
    (AppAccess(client_certificates="Require"), "client certificates"),
    (AppAccess(auth=AuthState.ON), "built-in authentication"),
])
def test_each_way_an_app_is_unreachable_is_named(access, reason):
    (found,) = unreachable_reasons(access)
    assert reason in found
    text = refusal("orders", access)
    assert reason in text and "checks: none" in text and "acr-deploy.checks=none" in text


def test_a_reachable_app_has_no_refusal_and_unknown_auth_is_said_not_assumed():
    assert refusal("orders", AppAccess()) == ""
    assert refusal("orders", AppAccess(client_certificates="accept")) == ""
    assert refusal("orders", AppAccess(auth=AuthState.UNKNOWN, auth_note="403")) == ""
    text = refusal("orders", AppAccess(ingress="internal", auth=AuthState.UNKNOWN, auth_note="refused (403)"))
    assert "could not be read: refused (403)" in text


def test_the_resource_tag_overrides_the_rules_check_mode():
    assert effective_check_mode(CheckMode.AUTO, None) == CheckMode.AUTO
    assert effective_check_mode(CheckMode.AUTO, "None") == CheckMode.NONE
    assert effective_check_mode(CheckMode.NONE, "http") == CheckMode.HTTP
    assert effective_check_mode(CheckMode.HTTP, " ") == CheckMode.HTTP
    with pytest.raises(ValueError, match="auto, http, none"):
        parse_check_mode("off")
