"""Container Apps through `azure-mgmt-appcontainers` (5.x): ContainerAppsPort + AppDirectory.

Thin on purpose: each method is one or two ARM calls, and every SDK failure leaves as one of two
exceptions the worker reacts to: `TransientAzureError` (429, 5xx, 409 "operation in progress",
dropped connections: try again later, honouring Retry-After) or `PermanentAzureError` (400, 401,
403, 404: the deployment fails with the service's message). The SDK's own retry policy is kept
short (a step has a budget; longer waits are the worker's delayed messages), and writes are sent
exactly once (`WRITE_OPTIONS`: no SDK retry, a bounded read time-out): a retry of a write that slept
inside the SDK could land after the deployment lost the app (shared/services/rollout/claim.py); the
step retries instead, re-checking its claim first.

Writes are sent without the SDK's LRO poller (`polling=False`) and confirmed by reading the app:
ARM answers a Container Apps PATCH with operation-status URLs at *subscription* scope
(`/subscriptions/{sub}/providers/Microsoft.App/locations/{region}/containerappOperation...`),
where a role assigned on resource groups gets 403 (microsoft/azure-container-apps#215). Every URL
this adapter calls is therefore under the app's resource group.

PATCH is a JSON merge patch: arrays are replaced whole. Every traffic table sent carries the app's
labels forward, and a containers array sent back gets `value: ""` on env entries the service
returned without one (as the az CLI does), so a write changes only what it means to change.
"""

from __future__ import annotations

import copy
import logging
import time
from datetime import datetime
from typing import Any, Callable, Mapping

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.adapters.arm_clients import SubscriptionClients, arm_client_options
from shared.domain.labels import entries as label_entries
from shared.domain.labels import label_fqdn
from shared.domain.model import Target
from shared.domain.reachability import AppAccess, AuthState
from shared.ports import (
    REVISION_HAS_LABEL, AppInfo, PermanentAzureError, Precondition, RevisionInfo, TransientAzureError,
)

__all__ = ["ContainerAppsAdapter", "PermanentAzureError", "TransientAzureError"]

log = logging.getLogger("acr_deploy.containerapps")

TAG_PREFIX = "acr-deploy."
_TRANSIENT_STATUS = {408, 409, 429, 500, 502, 503, 504}


# Per-call azure-core options for every write: sent once, answered within 20 s or treated as a
# transient failure (whose effect the next step reads back from the app).
WRITE_OPTIONS: dict[str, Any] = {"retry_total": 0, "read_timeout": 20}


def _retry_after(exc: HttpResponseError) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None  # an HTTP date: let the worker's own back-off decide


def _message(exc: Exception) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    text = getattr(error, "message", None)
    if code and text:
        return f"({code}) {text}"[:800]
    raw = getattr(exc, "message", None) or str(exc)
    return (raw.splitlines()[0] if raw else type(exc).__name__)[:800]


def _translate(exc: Exception, what: str) -> Exception:
    """The SDK exception as one the worker reacts to (the caller raises it `from exc`)."""
    if isinstance(exc, ClientAuthenticationError):
        return PermanentAzureError(f"{what}: not authorised: {_message(exc)}", 401, "AuthenticationFailed")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        code = getattr(getattr(exc, "error", None), "code", "") or ""
        if status in _TRANSIENT_STATUS or status >= 500:
            return TransientAzureError(f"{what}: HTTP {status} {_message(exc)}", _retry_after(exc))
        return PermanentAzureError(f"{what}: {_message(exc)}", status or None, code)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, ConnectionError, TimeoutError)):
        return TransientAzureError(f"{what}: connection failed ({type(exc).__name__})")
    if type(exc).__name__ == "CredentialUnavailableError":
        return PermanentAzureError(f"{what}: no Azure credential available: {str(exc)[:300]}", 401)
    return exc


def _ts(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _resolved(entry: dict[str, Any], latest: str) -> str:
    return latest if entry.get("latestRevision") and not entry.get("revisionName") else str(entry.get("revisionName") or "")


def traffic_with_labels(current: list[dict[str, Any]], weights: dict[str, int],
                        labels: Mapping[str, str] | None = None, labels_mode: bool = False) -> list[dict[str, Any]]:
    """The traffic table to send for `weights`, keeping every labelled entry of `current` (the
    app's table as GET returned it): a labelled revision keeps its label and gets its new weight
    (0 when it serves none), a label that follows the latest revision keeps following it. Merge
    patch replaces the array whole, so an entry left out here is a label deleted. With `labels`
    ({label: revision}), exactly those labels are sent instead (`shared.domain.labels.entries`)."""
    if labels is not None:
        return [{"revisionName": e.revision, "weight": e.weight, **({"label": e.label} if e.label else {})}
                for e in label_entries(labels, weights, labelled_only=labels_mode)]
    remaining = {rev: int(weight) for rev, weight in weights.items()}
    table: list[dict[str, Any]] = []
    for entry in current:
        label = entry.get("label")
        if not label:
            continue
        if entry.get("latestRevision") and not entry.get("revisionName"):
            table.append({"latestRevision": True, "weight": 0, "label": label})
            continue
        revision = str(entry.get("revisionName") or "")
        table.append({"revisionName": revision, "weight": remaining.pop(revision, 0), "label": label})
    table.extend({"revisionName": rev, "weight": weight} for rev, weight in remaining.items())
    return table


def configured_weights(props: dict[str, Any]) -> dict[str, int]:
    """revision -> weight from the app's configured traffic table (entries with weight > 0)."""
    latest = str(props.get("latestRevisionName") or "")
    weights: dict[str, int] = {}
    for entry in ((props.get("configuration") or {}).get("ingress") or {}).get("traffic") or []:
        name, weight = _resolved(entry, latest), int(entry.get("weight") or 0)
        if name and weight > 0:
            weights[name] = weights.get(name, 0) + weight
    return weights


def with_empty_env_values(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GET omits `value` for env entries whose value is empty; sent back like that the service
    refuses them (neither value nor secretRef). The az CLI puts `value: ""` back; so do we."""
    for container in containers:
        for env in container.get("env") or []:
            if "value" not in env and not env.get("secretRef"):
                env["value"] = ""
    return containers


def _revision_info(raw: dict[str, Any]) -> RevisionInfo:
    props = raw.get("properties") or {}
    images = [c.get("image", "") for c in ((props.get("template") or {}).get("containers") or [])]
    error = props.get("provisioningError") or ""
    return RevisionInfo(
        name=raw.get("name", ""),
        active=bool(props.get("active")),
        traffic_weight=int(props.get("trafficWeight") or 0),
        provisioning_state=str(props.get("provisioningState") or ""),
        running_state=str(props.get("runningState") or ""),
        health_state=str(props.get("healthState") or ""),
        fqdn=str(props.get("fqdn") or ""),
        image=images[0] if images else "",
        created=_ts(props.get("createdTime")),
        provisioning_error=str(error)[:500],
        # Not in the REST spec (nor the SDK's model): the service's reason for ActivationFailed /
        # Unhealthy, e.g. "Deployment Progress Deadline Exceeded. 0/1 replicas ready."
        running_state_details=str(props.get("runningStateDetails") or "")[:500],
    )


class ContainerAppsAdapter:
    def __init__(
        self,
        client_factory: Callable[[str], Any],
        default_subscription: str | None = None,
        discovery_resource_groups: tuple[str, ...] = (),
        *,
        poll_interval_s: float = 0.5,
        lro_timeout_s: float = 60.0,
    ) -> None:
        self._clients = SubscriptionClients(client_factory, default_subscription)
        self.default_subscription = default_subscription
        self.discovery_resource_groups = discovery_resource_groups
        self.poll_interval_s = poll_interval_s
        self.lro_timeout_s = lro_timeout_s

    @classmethod
    def from_settings(cls, settings: Any, credential: Any, **kwargs: Any) -> "ContainerAppsAdapter":
        """`client_options`: extra azure-core options for the SDK client (e.g. `raw_request_hook`,
        which the role-coverage test uses to record every URL); other keywords go to __init__."""
        from azure.mgmt.appcontainers import ContainerAppsAPIClient

        client_options = dict(kwargs.pop("client_options", None) or {})

        def factory(subscription_id: str) -> Any:
            return ContainerAppsAPIClient(credential, subscription_id, **arm_client_options(settings, **client_options))

        return cls(factory, settings.subscription_id, tuple(settings.discovery_resource_groups), **kwargs)

    def _client(self, subscription_id: str | None) -> Any:
        return self._clients.get(subscription_id)

    def close(self) -> None:
        self._clients.close()

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            translated = _translate(exc, what)
            if translated is exc:
                raise
            raise translated from exc

    # ------------------------------------------------------------------ reads
    def _get_raw(self, target: Target) -> dict[str, Any]:
        client = self._client(target.subscription_id)
        app = self._call(f"get app {target.app}",
                         lambda: client.container_apps.get(target.resource_group, target.app))
        return app.as_dict()

    def get_app(self, target: Target) -> AppInfo:
        raw = self._get_raw(target)
        client = self._client(target.subscription_id)
        revisions = self._call(
            f"list revisions of {target.app}",
            lambda: [r.as_dict() for r in client.container_apps_revisions.list_revisions(
                target.resource_group, target.app)],
        )
        return self._app_info(target, raw, [_revision_info(r) for r in revisions])

    def get_revision(self, target: Target, revision: str) -> RevisionInfo | None:
        client = self._client(target.subscription_id)
        try:
            raw = self._call(f"get revision {revision}", lambda: client.container_apps_revisions.get_revision(
                target.resource_group, target.app, revision))
        except PermanentAzureError as exc:
            if exc.status == 404:
                return None
            raise
        return _revision_info(raw.as_dict())

    @staticmethod
    def _app_info(target: Target, raw: dict[str, Any], revisions: list[RevisionInfo]) -> AppInfo:
        props = raw.get("properties") or {}
        conf = props.get("configuration") or {}
        ingress = conf.get("ingress") or {}
        mode = str(conf.get("activeRevisionsMode") or "Single")
        # The service's own view of routing: each revision's trafficWeight already resolves
        # `latestRevision` entries and Single mode. Fall back to the configured table without one.
        weights = {r.name: r.traffic_weight for r in revisions if r.active and r.traffic_weight > 0}
        if not weights:
            weights = configured_weights(props)
        labels: dict[str, list[str]] = {}
        label_map: dict[str, str] = {}
        label_hosts: dict[str, str] = {}
        app_fqdn = str(ingress.get("fqdn") or "")
        for entry in ingress.get("traffic") or []:
            if entry.get("label"):
                name = _resolved(entry, str(props.get("latestRevisionName") or ""))
                labels.setdefault(name, []).append(entry["label"])
                label_map[entry["label"]] = name
                # The service's label host is <app>---<label>.<environment domain>; a host the entry
                # names itself (the local emulator's loopback port) wins.
                host = str(entry.get("fqdn") or "") or label_fqdn(target.app, entry["label"], app_fqdn)
                if host:
                    label_hosts[entry["label"]] = host
        if labels:
            from dataclasses import replace

            revisions = [replace(r, labels=tuple(labels.get(r.name, ()))) for r in revisions]
        containers = (props.get("template") or {}).get("containers") or []
        return AppInfo(
            target=target,
            revisions_mode="Multiple" if mode.lower() == "multiple" else ("Labels" if mode.lower() == "labels" else "Single"),
            traffic=weights,
            fqdn=str(ingress.get("fqdn") or ""),
            latest_revision=str(props.get("latestRevisionName") or ""),
            images={c.get("name", ""): c.get("image", "") for c in containers},
            tags=dict(raw.get("tags") or {}),
            revisions=tuple(revisions),
            provisioning_state=str(props.get("provisioningState") or ""),
            labels=label_map,
            label_fqdns=label_hosts,
        )

    def get_access(self, target: Target) -> AppAccess:
        """How a caller outside the app's environment reaches it: ingress, IP allow-list, client
        certificates (the app's configuration) and built-in authentication (its authConfigs, which
        the role may read; a refusal is reported as unknown, never as off)."""
        props = self._get_raw(target).get("properties") or {}
        ingress = (props.get("configuration") or {}).get("ingress")
        if not isinstance(ingress, dict):
            return AppAccess(ingress="none", auth=AuthState.OFF)
        rules = [r for r in ingress.get("ipSecurityRestrictions") or [] if isinstance(r, dict)]
        auth, note = self._auth_state(target)
        return AppAccess(
            # ARM's default for `external` is false: ingress without it is internal.
            ingress="external" if ingress.get("external") else "internal",
            ip_allow_list=bool(rules) and all(str(r.get("action", "")).lower() == "allow" for r in rules),
            client_certificates=str(ingress.get("clientCertificateMode") or ""),
            auth=auth, auth_note=note,
        )

    def _auth_state(self, target: Target) -> tuple[AuthState, str]:
        client = self._client(target.subscription_id)
        try:
            configs = self._call(f"list auth configs of {target.app}", lambda: [
                c.as_dict() for c in client.container_apps_auth_configs.list_by_container_app(
                    target.resource_group, target.app)])
        except PermanentAzureError as exc:
            if exc.status == 404:
                return AuthState.OFF, ""
            if exc.status in (401, 403):
                return AuthState.UNKNOWN, (f"reading authConfigs was refused ({exc.code or exc.status}); the "
                                           "role needs Microsoft.App/containerApps/authConfigs/read")
            raise
        for config in configs:
            props = config.get("properties") or {}
            enabled = ((props.get("platform") or {}).get("enabled"))
            action = str((props.get("globalValidation") or {}).get("unauthenticatedClientAction") or "")
            if enabled and action.lower() != "allowanonymous":
                return AuthState.ON, ""
        return AuthState.OFF, ""

    # ------------------------------------------------------------------ writes
    def create_revision(
        self, target: Target, image: str, suffix: str, pin_traffic: dict[str, int],
        switch_to_multiple: bool = False, target_label: str = "", precondition: Precondition | None = None,
    ) -> str:
        """ONE PATCH: the template with the pushed image in the right container plus the
        revisionSuffix, and ingress traffic pinned to `pin_traffic` so the new revision starts at
        0 %. JSON merge patch replaces arrays whole, so the full containers array is sent (empty env
        values restored) and the traffic table keeps the app's labels. The operation is not awaited:
        the worker polls the revision's own state (WAITING_READY)."""
        name = f"{target.app}--{suffix}"
        if self.get_revision(target, name) is not None:
            return name  # idempotent: a redelivered step, or a re-push of the same tag+digest
        raw = self._get_raw(target)
        props = raw.get("properties") or {}
        containers = with_empty_env_values(copy.deepcopy((props.get("template") or {}).get("containers") or []))
        index = self._container_index(target, containers)
        containers[index]["image"] = image
        body: dict[str, Any] = {
            "location": raw.get("location"),  # the PATCH schema still requires it
            "properties": {"template": {"containers": containers, "revisionSuffix": suffix}},
        }
        configuration: dict[str, Any] = {}
        if switch_to_multiple:
            configuration["activeRevisionsMode"] = "Multiple"
        if target_label:  # Labels mode: the service puts this label on the new revision
            configuration["targetLabel"] = target_label
        ingress = (props.get("configuration") or {}).get("ingress")
        if pin_traffic and ingress is not None:
            configuration["ingress"] = {"traffic": traffic_with_labels(ingress.get("traffic") or [], pin_traffic)}
        if configuration:
            body["properties"]["configuration"] = configuration
        client = self._client(target.subscription_id)
        if precondition is not None:  # after the reads above, which may have waited: right before sending
            precondition()
        try:
            self._call(f"create revision {name}", lambda: client.container_apps.begin_update(
                target.resource_group, target.app, body, polling=False, **WRITE_OPTIONS))
        except (TransientAzureError, PermanentAzureError):
            # The PATCH may have been applied before the answer got lost (or a racing worker
            # applied it): the revision's existence is the truth.
            if self.get_revision(target, name) is not None:
                return name
            raise
        return name

    @staticmethod
    def _container_index(target: Target, containers: list[dict[str, Any]]) -> int:
        if not containers:
            raise PermanentAzureError(f"app {target.app} has no containers in its template", 400)
        if target.container:
            for i, container in enumerate(containers):
                if container.get("name") == target.container:
                    return i
            names = ", ".join(c.get("name", "?") for c in containers)
            raise PermanentAzureError(
                f"app {target.app} has no container named {target.container} (it has: {names})", 400)
        if len(containers) > 1:
            names = ", ".join(c.get("name", "?") for c in containers)
            raise PermanentAzureError(
                f"app {target.app} has {len(containers)} containers ({names}); the rule must name the "
                "container to update", 400)
        return 0

    def set_traffic(self, target: Target, weights: dict[str, int], wait_s: float | None = None,
                    labels: Mapping[str, str] | None = None, precondition: Precondition | None = None) -> bool:
        """PATCH the traffic table (pinned by name, the app's labels kept) without the SDK's poller,
        then read the app until it shows the change applied (`provisioningState` Succeeded and these
        weights), every `poll_interval_s`: up to `lro_timeout_s` when `wait_s` is None (not seen
        then: TransientAzureError), else at most `wait_s`, answering False when it is not seen yet.
        The app ending `Failed` with the change is the operation's failure (PermanentAzureError).
        `labels`: exactly these labels instead of the app's (blue/green moves them)."""
        raw = self._get_raw(target)
        props = raw.get("properties") or {}
        conf = props.get("configuration") or {}
        current = (conf.get("ingress") or {}).get("traffic") or []
        labels_mode = str(conf.get("activeRevisionsMode") or "").lower() == "labels"
        try:
            table = traffic_with_labels(current, weights, labels, labels_mode)
        except ValueError as exc:  # an unlabelled revision with traffic in Labels mode
            raise PermanentAzureError(f"set traffic on {target.app}: {exc}", 400, "UnlabelledTraffic") from exc
        body = {
            "location": raw.get("location"),  # the PATCH schema still requires it
            "properties": {"configuration": {"ingress": {"traffic": table}}},
        }
        client = self._client(target.subscription_id)
        if precondition is not None:
            precondition()
        self._call(f"set traffic on {target.app}", lambda: client.container_apps.begin_update(
            target.resource_group, target.app, body, polling=False, **WRITE_OPTIONS))
        limit = self.lro_timeout_s if wait_s is None else max(float(wait_s), 0.0)
        expected = {rev: int(w) for rev, w in weights.items() if int(w) > 0}
        if self._wait_applied(target, expected, limit):
            return True
        if wait_s is None:
            raise TransientAzureError(
                f"traffic change on {target.app} not applied after {self.lro_timeout_s:g} s")
        return False

    def _wait_applied(self, target: Target, expected: dict[str, int], limit_s: float) -> bool:
        """Read the app (at least once, then every poll_interval_s up to limit_s) until it shows
        `expected` as its traffic with provisioning finished."""
        deadline = time.monotonic() + limit_s
        while True:
            props = self._get_raw(target).get("properties") or {}
            state = str(props.get("provisioningState") or "")
            applied = configured_weights(props) == expected
            if applied and state.lower() == "succeeded":
                return True
            if applied and state.lower() in ("failed", "canceled"):  # this change, not an older one
                raise PermanentAzureError(
                    f"set traffic on {target.app}: the app's provisioning ended {state}", None, state)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self.poll_interval_s, remaining))

    def set_revision_active(self, target: Target, revision: str, active: bool,
                            precondition: Precondition | None = None) -> None:
        """Activate or deactivate one revision. The service deactivates a revision that still
        receives traffic (Revisions_Deactivate example; azure-container-apps#410, #1345), so the
        adapter reads the app first and refuses that itself: a deactivation never cuts live traffic,
        and never stops a revision a traffic label points at."""
        if not active:
            info = self.get_app(target)
            weight = info.traffic.get(revision, 0)
            if weight:
                raise PermanentAzureError(
                    f"refusing to deactivate {revision}: it still receives {weight} % of {target.app}'s traffic",
                    status=409, code="RevisionHasTraffic")
            labels = next((r.labels for r in info.revisions if r.name == revision), ())
            if labels:
                # A label is someone's way to reach that revision (blue/green, a pinned test URL);
                # deactivating it would leave the label pointing at a stopped revision.
                raise PermanentAzureError(
                    f"refusing to deactivate {revision}: it carries the traffic label(s) {', '.join(labels)}",
                    status=409, code=REVISION_HAS_LABEL)
        client = self._client(target.subscription_id)
        if precondition is not None:
            precondition()
        ops = client.container_apps_revisions
        action = ops.activate_revision if active else ops.deactivate_revision
        verb = "activate" if active else "deactivate"
        self._call(f"{verb} {revision}", lambda: action(target.resource_group, target.app, revision,
                                                        **WRITE_OPTIONS))

    # ------------------------------------------------------------------ discovery
    def list_tagged_apps(self) -> list[AppInfo]:
        """Apps in the discovery resource groups carrying at least one `acr-deploy.*` tag."""
        sub = self.default_subscription
        found: list[AppInfo] = []
        for group in self.discovery_resource_groups:
            client = self._client(sub)
            apps = self._call(f"list apps in {group}",
                              lambda: [a.as_dict() for a in client.container_apps.list_by_resource_group(group)])
            for raw in apps:
                tags = raw.get("tags") or {}
                if not any(str(k).lower().startswith(TAG_PREFIX) for k in tags):
                    continue
                target = Target(sub or "", group, raw.get("name", ""))
                found.append(self._app_info(target, raw, []))
        return found
