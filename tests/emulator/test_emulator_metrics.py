"""Azure Monitor metrics of the emulated apps (`{app id}/providers/Microsoft.Insights/metrics`), read through
the unmodified azure-mgmt-monitor client: counts of the requests the servers answered, as the service shapes
them (series per split dimension, lower-case dimension names, `top`, ResponseTime without revisionName)."""
from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.monitor import MonitorManagementClient


from .helpers import RG, SUB, LocalCredential, create_app

APP = f"subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.App/containerApps/orders-api"


@pytest.fixture
def monitor(emu):
    with MonitorManagementClient(LocalCredential(), SUB, base_url=emu.base_url, connection_verify=emu.ca_path,
                                 retry_total=0) as client:
        yield client


def _hit(http, emu, n: int) -> list[int]:
    url = emu.control.app("orders-api")["url"]
    return [http.get(url + "/").status_code for _ in range(n)]


def test_a_share_fails_after_the_first_requests_and_the_metrics_count_each_answer(emu, client, http, monitor):
    create_app(client, suffix="v1")
    emu.control.add_behavior("registry.local/orders-api:*", fail_after=3, fail_share=0.25)
    statuses = _hit(http, emu, 11)
    assert statuses == [200] * 3 + [200, 200, 200, 500] + [200, 200, 200, 500]
    result = monitor.metrics.list(APP, metricnames="Requests", aggregation="Total", interval="PT1M",
                                  filter="revisionName eq '*' and statusCodeCategory eq '*'")
    assert result.interval == "PT1M" and "/" in result.timespan
    [requests] = result.value
    assert requests.name.value == "Requests" and requests.unit == "Count"
    series = {tuple((m.name.value, m.value) for m in s.metadatavalues): sum(p.total or 0 for p in s.data)
              for s in requests.timeseries}
    assert series == {(("revisionname", "orders-api--v1"), ("statuscodecategory", "2xx")): 9,
                      (("revisionname", "orders-api--v1"), ("statuscodecategory", "5xx")): 2}


def test_a_split_returns_at_most_top_series_and_response_time_has_no_revision(emu, client, http, monitor):
    create_app(client, suffix="v1")
    emu.control.add_behavior("registry.local/orders-api:*", fail_after=1, fail_share=0.5, latency_ms=5)
    _hit(http, emu, 6)
    top1 = monitor.metrics.list(APP, metricnames="Requests", top=1, filter="statusCodeCategory eq '*'")
    assert len(top1.value[0].timeseries) == 1
    latency = monitor.metrics.list(APP, metricnames="ResponseTime", aggregation="Average")
    points = [p.average for s in latency.value[0].timeseries for p in s.data if p.average is not None]
    assert points and all(v >= 5 for v in points)
    with pytest.raises(HttpResponseError) as refused:
        monitor.metrics.list(APP, metricnames="ResponseTime", filter="revisionName eq '*'")
    assert refused.value.status_code == 400 and "dimension" in str(refused.value.message)


def test_fail_share_needs_fail_after_and_a_share(emu):
    with pytest.raises(Exception) as bad:
        emu.control.add_behavior("x:*", fail_share=0.5)
    assert "fail_after" in str(bad.value)
    with pytest.raises(Exception) as bad:
        emu.control.add_behavior("x:*", fail_after=1, fail_share=2)
    assert "(0, 1]" in str(bad.value)
