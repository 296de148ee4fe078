"""Azure Monitor's Container Apps request metrics through `azure-mgmt-monitor`: the `RequestMetrics` port.

One `metrics.list` call on the app's resource id per window: `Requests`, total per minute, split by
`revisionName` and `statusCodeCategory` (`$filter=revisionName eq '*' and statusCodeCategory eq '*'`).
`ResponseTime` is a second call when a rule asks for it: Azure publishes it split by status code only,
never by revision, so it is the app's average (a filter on `revisionName` would be refused).

Details the service has that a stand-in might not:
- a split returns at most `top` series (default 10): revisions x status classes can exceed that;
- `metadatavalues` name the dimensions in lower case (`revisionname`);
- a minute without requests may come back without `total`, or not at all.

Same credential and ARM endpoint as the Container Apps adapter (the function's identity needs
Monitoring Reader on the target resource groups: infra/app/monitoring-reader-assignment.bicep); failures
leave as the same two exceptions (`TransientAzureError` / `PermanentAzureError`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from shared.adapters.arm_clients import SubscriptionClients, arm_client_options
from shared.adapters.containerapps import _translate
from shared.domain.analysis import StatusCounts, WindowMetrics
from shared.domain.model import Target
from shared.ports import PermanentAzureError

REQUESTS = "Requests"
RESPONSE_TIME = "ResponseTime"
SERIES_LIMIT = 200  # `top`: series per call (revisions x status classes); Azure's default is 10


def resource_id(target: Target, subscription_id: str) -> str:
    return (f"subscriptions/{subscription_id}/resourceGroups/{target.resource_group}"
            f"/providers/Microsoft.App/containerApps/{target.app}")


def timespan(start: datetime, end: datetime) -> str:
    fmt = lambda t: t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    return f"{fmt(start)}/{fmt(end)}"


class MonitorMetricsAdapter:
    def __init__(self, client_factory: Callable[[str], Any], default_subscription: str | None) -> None:
        self._clients = SubscriptionClients(client_factory, default_subscription)
        self.default_subscription = default_subscription
        self.calls = 0  # Monitor calls made (benchmarks: throttling limits are per subscription)

    @classmethod
    def from_settings(cls, settings: Any, credential: Any, **client_options: Any) -> "MonitorMetricsAdapter":
        def factory(subscription_id: str) -> Any:
            from azure.mgmt.monitor import MonitorManagementClient  # imported on the first metrics read

            return MonitorManagementClient(credential, subscription_id, **arm_client_options(settings, **client_options))

        return cls(factory, settings.subscription_id)

    def close(self) -> None:
        self._clients.close()

    def get_window_metrics(self, target: Target, start: datetime, end: datetime,
                           response_time: bool = False) -> WindowMetrics:
        sub = target.subscription_id or self.default_subscription
        if not sub:
            raise PermanentAzureError("no subscription id (set ACR_DEPLOY_SUBSCRIPTION_ID)", 400)
        uri = resource_id(target, sub)
        span = timespan(start, end)
        counts = self._list(sub, uri, span, REQUESTS, "Total",
                            filter="revisionName eq '*' and statusCodeCategory eq '*'")
        by_revision: dict[str, dict[str, int]] = {}
        for series in _series(counts, REQUESTS):
            dims = _dimensions(series)
            revision, category = dims.get("revisionname", ""), dims.get("statuscodecategory", "")
            total = sum(int(point.total or 0) for point in series.data or ())
            if revision and total:
                bucket = by_revision.setdefault(revision, {})
                bucket[category] = bucket.get(category, 0) + total
        latency = None
        if response_time:
            latency = _weighted_average(_series(self._list(sub, uri, span, RESPONSE_TIME, "Average,Count"),
                                                RESPONSE_TIME))
        return WindowMetrics(start, end, {r: StatusCounts(c) for r, c in by_revision.items()}, latency)

    def _list(self, sub: str, uri: str, span: str, metric: str, aggregation: str, **extra: Any) -> Any:
        client = self._clients.get(sub)
        self.calls += 1
        try:
            return client.metrics.list(uri, timespan=span, interval="PT1M", metricnames=metric,
                                       aggregation=aggregation, top=SERIES_LIMIT, **extra)
        except Exception as exc:
            translated = _translate(exc, f"read {metric} metrics of {uri.rsplit('/', 1)[-1]}")
            if translated is exc:
                raise
            raise translated from exc


def _series(response: Any, metric: str) -> list[Any]:
    for item in getattr(response, "value", None) or ():
        name = getattr(getattr(item, "name", None), "value", "") or ""
        if name.lower() == metric.lower():
            return list(item.timeseries or ())
    return []


def _dimensions(series: Any) -> dict[str, str]:
    return {str(getattr(getattr(m, "name", None), "value", "") or "").lower(): str(m.value or "")
            for m in series.metadatavalues or ()}


def _weighted_average(series: list[Any]) -> float | None:
    """The mean of the minutes' averages, weighted by their request counts (a plain mean of minute
    averages would let one slow request in an idle minute outweigh a busy one)."""
    weight = total = 0.0
    for s in series:
        for point in s.data or ():
            if point.average is None:
                continue
            n = float(point.count or 1)
            weight += n
            total += point.average * n
    return total / weight if weight else None
