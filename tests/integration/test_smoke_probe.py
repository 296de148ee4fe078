"""HttpSmokeProbe against real HTTPS revision URLs served by the emulator (its own CA)."""

from __future__ import annotations

import uuid

import pytest

from shared.adapters.smoke import HttpSmokeProbe
from shared.domain.model import SmokeCheck

SUB = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def revision_url(emulator):
    rg, app = f"rg-{uuid.uuid4().hex[:6]}", f"smoke-{uuid.uuid4().hex[:6]}"
    image = f"reg.io/{app}:1.0.0"
    emulator.control.seed({"subscriptionId": SUB, "resourceGroups": [{
        "name": rg, "location": "westeurope", "environments": [{"name": "env"}],
        "apps": [{"name": app, "environment": "env", "activeRevisionsMode": "Multiple", "image": image,
                  "revisionSuffix": "one"}]}]})
    (rev,) = emulator.control.app(app)["revisions"]
    return rev["url"], image


@pytest.fixture
def probe(emulator):
    p = HttpSmokeProbe(ca_bundle=emulator.ca_path)
    yield p
    p.close()


def test_default_check_passes_on_a_healthy_revision(revision_url, probe):
    url, _ = revision_url
    result = probe.probe(url, SmokeCheck())
    assert result.ok and result.status == 200 and result.detail == "" and result.latency_ms > 0
    assert result.url == url + "/"


def test_status_body_and_json_field_checks(revision_url, probe):
    url, _ = revision_url
    assert probe.probe(url, SmokeCheck(path="/healthz", json_field="status", json_equals="healthy")).ok
    assert probe.probe(url, SmokeCheck(path="/healthz", body_contains="healthy")).ok
    wrong = probe.probe(url, SmokeCheck(path="/healthz", json_field="status", json_equals="ready"))
    assert not wrong.ok and "is 'healthy', expected 'ready'" in wrong.detail
    missing = probe.probe(url, SmokeCheck(path="/", json_field="build.version"))
    assert not missing.ok and "build.version missing" in missing.detail
    lacks = probe.probe(url, SmokeCheck(body_contains="hello"))
    assert not lacks.ok and "body lacks 'hello'" in lacks.detail
    assert probe.probe(url, SmokeCheck(method="POST", path="/x", expect_status=(200, 201))).ok


def test_failing_status_gives_a_short_excerpt_without_headers(emulator, revision_url, probe):
    url, image = revision_url
    emulator.control.add_behavior(image, status=503)
    result = probe.probe(url, SmokeCheck(headers=(("Authorization", "Bearer s3cret"),)))
    assert not result.ok and result.status == 503
    assert result.detail.startswith("HTTP 503, expected 200: ")
    assert "s3cret" not in result.detail and "x-emulator" not in result.detail.lower()
    assert len(result.detail) < 250


def test_latency_bound_and_timeout(emulator, revision_url, probe):
    url, image = revision_url
    emulator.control.add_behavior(image, latency_ms=300)
    slow = probe.probe(url, SmokeCheck(max_latency_ms=50))
    assert not slow.ok and slow.status == 200 and "over the 50 ms bound" in slow.detail
    timed_out = probe.probe(url, SmokeCheck(timeout_s=0.1))
    assert not timed_out.ok and timed_out.status is None and "timed out after 0.1 s" in timed_out.detail


def test_unreachable_and_missing_urls_fail_cleanly(probe):
    from devtools.netutil import free_port

    result = probe.probe(f"https://127.0.0.1:{free_port()}", SmokeCheck(timeout_s=1))
    assert not result.ok and result.status is None and result.detail.startswith("request failed")
    assert "no URL" in probe.probe("", SmokeCheck()).detail
