"""MonitorMetricsAdapter through the real azure-mgmt-monitor client against the emulator's metrics API,
which counts the requests its revision servers really answered."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import ssl

import httpx
import pytest

from shared.adapters.credentials import get_arm_credential
from shared.adapters.monitor import MonitorMetricsAdapter
from shared.domain.model import Target
from shared.ports import PermanentAzureError
from shared.settings import Settings

SUB = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def app(emulator):
    rg, name = f"rg-{uuid.uuid4().hex[:6]}", f"app-{uuid.uuid4().hex[:6]}"
    emulator.control.seed({"subscriptionId": SUB, "resourceGroups": [
        {"name": rg, "location": "westeurope", "environments": [{"name": "env"}],
         "apps": [{"name": name, "environment": "env", "activeRevisionsMode": "Multiple",
                   "image": f"reg.io/{name}:1.0.0", "revisionSuffix": "first"}]}]})
    yield Target(SUB, rg, name)
    emulator.control.clear_behaviors()


def adapter_for(emulator) -> MonitorMetricsAdapter:
    settings = Settings.from_env({
        "ACR_DEPLOY_ARM_ENDPOINT": emulator.base_url, "ACR_DEPLOY_ARM_CA_BUNDLE": emulator.ca_path,
        "ACR_DEPLOY_ARM_CREDENTIAL": "emulator", "ACR_DEPLOY_SUBSCRIPTION_ID": SUB,
    })
    return MonitorMetricsAdapter.from_settings(settings, get_arm_credential(settings))


def send(url: str, n: int, ca: str) -> list[int]:
    with httpx.Client(verify=ssl.create_default_context(cafile=ca), timeout=5) as client:
        return [client.get(url + "/").status_code for _ in range(n)]


def test_counts_by_revision_and_status_class_are_the_answered_requests(emulator, app):
    emulator.control.add_behavior(image_glob=f"reg.io/{app.app}:*", fail_after=4, fail_share=0.5)
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    statuses = send(emulator.control.app(app.app)["url"], 20, emulator.ca_path)
    end = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert statuses.count(500) == 8 and statuses[:4] == [200] * 4  # first 4 well, then every other one fails
    adapter = adapter_for(emulator)
    try:
        window = adapter.get_window_metrics(app, start, end, response_time=True)
    finally:
        adapter.close()
    counts = window.revisions[f"{app.app}--first"]
    assert dict(counts.by_class) == {"2xx": 12, "5xx": 8}
    assert counts.error_rate == pytest.approx(40.0)
    assert window.response_time_ms is not None and window.response_time_ms >= 0
    assert adapter.calls == 2


def test_a_window_before_the_requests_is_empty_and_ingestion_delay_hides_fresh_ones(emulator, app):
    url = emulator.control.app(app.app)["url"]
    adapter = adapter_for(emulator)
    try:
        before = datetime.now(timezone.utc)
        send(url, 3, emulator.ca_path)
        assert adapter.get_window_metrics(app, before - timedelta(minutes=5), before).revisions == {}
        emulator.control.config(metrics_delay=600)
        try:
            hidden = adapter.get_window_metrics(app, before, datetime.now(timezone.utc) + timedelta(seconds=1))
        finally:
            emulator.control.config(metrics_delay=0)
        assert hidden.revisions == {}
        shown = adapter.get_window_metrics(app, before, datetime.now(timezone.utc) + timedelta(seconds=1))
        assert shown.revisions[f"{app.app}--first"].total == 3
    finally:
        adapter.close()


def test_an_unknown_app_is_a_permanent_error(emulator, app):
    adapter = adapter_for(emulator)
    try:
        now = datetime.now(timezone.utc)
        with pytest.raises(PermanentAzureError) as err:
            adapter.get_window_metrics(Target(SUB, app.resource_group, "nosuchapp"), now - timedelta(minutes=1), now)
        assert err.value.status == 404
    finally:
        adapter.close()
