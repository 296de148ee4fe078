"""RBAC mode: the emulator started with role assignments answers ARM's 403 AuthorizationFailed outside them,
operation-status URLs (subscription scope) included. The role is the pipeline's own custom role, parsed from
infra/app/containerapps-role.bicep and assigned on one resource group, as the Bicep does."""
from __future__ import annotations

from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError

from devtools.aca_emulator import EmulatorServer, RoleAssignment, actions_from_bicep

from .helpers import BASE_SEED, RG, SUB, app_body, make_client

ROLE_BICEP = Path(__file__).resolve().parents[2] / "infra" / "app" / "containerapps-role.bicep"
RG_SCOPE = f"/subscriptions/{SUB}/resourceGroups/{RG}"
SEED = dict(BASE_SEED, resourceGroups=[dict(BASE_SEED["resourceGroups"][0], apps=[
    {"name": "orders-api", "environment": "env", "activeRevisionsMode": "Multiple", "revisionSuffix": "v1",
     "image": "registry.local/orders-api:1.0.0", "secrets": [{"name": "db", "value": "s3cret"}]}])])


def test_the_role_is_read_from_the_bicep():
    actions = actions_from_bicep(ROLE_BICEP)
    assert "Microsoft.App/containerApps/write" in actions
    # The pipeline confirms its writes by reading the app, never the subscription-scope operation status.
    assert not any("containerappOperation" in a for a in actions)
    assert not any(a.endswith("listSecrets/action") for a in actions)


def _server(tmp_path, *assignments):
    return EmulatorServer(tls_dir=tmp_path, seed=SEED, role_assignments=list(assignments))


def _update(client, suffix: str):
    return client.container_apps.begin_update(RG, "orders-api", {"properties": {"template": {
        "revisionSuffix": suffix, "containers": [{"name": "orders-api", "image": "registry.local/orders-api:2"}]}}})


def _assert_forbidden(excinfo, action: str, scope_part: str):
    err = excinfo.value
    assert err.status_code == 403 and err.error.code == "AuthorizationFailed"
    assert action in err.error.message and scope_part in err.error.message


def test_the_bicep_role_on_a_resource_group_cannot_poll_operations(tmp_path):
    role = RoleAssignment("*", RG_SCOPE, tuple(actions_from_bicep(ROLE_BICEP)))
    with _server(tmp_path, role) as emu, make_client(emu) as client:
        assert client.container_apps.get(RG, "orders-api").name == "orders-api"
        assert [r.name for r in client.container_apps_revisions.list_revisions(RG, "orders-api")] == [
            "orders-api--v1"]
        with pytest.raises(HttpResponseError) as denied:
            client.container_apps.list_secrets(RG, "orders-api")
        _assert_forbidden(denied, "Microsoft.App/containerApps/listSecrets/action", RG_SCOPE)
        with pytest.raises(HttpResponseError) as denied:  # the PATCH is accepted; polling it is not
            _update(client, "v2").result()
        _assert_forbidden(denied, "Microsoft.App/locations/containerappOperationStatuses/read",
                          f"/subscriptions/{SUB}/providers/Microsoft.App/locations/")
        with pytest.raises(HttpResponseError) as denied:  # another resource group
            client.container_apps.get("rg-other", "orders-api")
        _assert_forbidden(denied, "Microsoft.App/containerApps/read", "rg-other")


def test_operation_status_reads_at_subscription_scope_let_the_write_finish(tmp_path):
    roles = [RoleAssignment("*", RG_SCOPE, tuple(actions_from_bicep(ROLE_BICEP))),
             RoleAssignment("*", f"/subscriptions/{SUB}", ("Microsoft.App/locations/*/read",))]
    with _server(tmp_path, *roles) as emu, make_client(emu) as client:
        assert _update(client, "v2").result().properties.latest_revision_name == "orders-api--v2"
        with pytest.raises(HttpResponseError) as denied:  # creating an app also needs join on the environment
            client.container_apps.begin_create_or_update(RG, "new-app", app_body(name="new-app")).result()
        _assert_forbidden(denied, "Microsoft.App/managedEnvironments/join/action", "managedEnvironments/env")


def test_assignments_are_per_principal_and_honour_not_actions(tmp_path):
    role = RoleAssignment("someone-else", f"/subscriptions/{SUB}", ("*",))
    wide = RoleAssignment("*", f"/subscriptions/{SUB}", ("Microsoft.App/*",), ("Microsoft.App/containerApps/delete",))
    with _server(tmp_path, role) as emu, make_client(emu) as client:
        with pytest.raises(HttpResponseError) as denied:
            client.container_apps.get(RG, "orders-api")
        _assert_forbidden(denied, "Microsoft.App/containerApps/read", "orders-api")
    with _server(tmp_path, wide) as emu, make_client(emu) as client:
        assert client.container_apps.list_secrets(RG, "orders-api").value[0].value == "s3cret"
        with pytest.raises(HttpResponseError) as denied:
            client.container_apps.begin_delete(RG, "orders-api").result()
        _assert_forbidden(denied, "Microsoft.App/containerApps/delete", "orders-api")


def test_the_pipeline_adapter_works_under_exactly_the_bicep_role(tmp_path):
    """Issue 11's decision proven: every call the adapter makes (create a revision, move traffic,
    deactivate, read) passes under the role the Bicep grants on the resource group, and nothing more."""
    import sys
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
    from test_containerapps_adapter import DIGEST, make_adapter  # noqa: E402

    from shared.domain.model import Target

    def forbidden(emu) -> list[dict]:
        return [r for r in emu.control.dump()["armRequests"] if str(r.get("status")) == "403"]

    role = RoleAssignment("*", RG_SCOPE, tuple(actions_from_bicep(ROLE_BICEP)))
    with _server(tmp_path, role) as emu, make_client(emu) as client:
        adapter = make_adapter(emu, RG)
        try:
            target = Target(SUB, RG, "orders-api")
            name = adapter.create_revision(target, f"registry.local/orders-api@{DIGEST}", "v2",
                                           {"orders-api--v1": 100})
            deadline = time.monotonic() + 20
            while not adapter.get_revision(target, name).ready and time.monotonic() < deadline:
                time.sleep(0.05)
            assert adapter.set_traffic(target, {name: 100}, wait_s=10) is True
            assert adapter.get_app(target).traffic == {name: 100}
            adapter.set_revision_active(target, "orders-api--v1", False)
            assert adapter.get_revision(target, "orders-api--v1").active is False
            assert forbidden(emu) == []
            with pytest.raises(HttpResponseError):  # the log does record a refusal when there is one
                client.container_apps.list_secrets(RG, "orders-api")
            assert len(forbidden(emu)) == 1
        finally:
            adapter.close()


def test_request_metrics_need_monitoring_reader_beside_the_custom_role(tmp_path):
    """Canary analysis reads Microsoft.Insights/metrics: the custom Container Apps role does not grant it,
    Monitoring Reader on the resource group (as containerapps-role-assignment.bicep assigns it) does."""
    from azure.mgmt.monitor import MonitorManagementClient

    from devtools.aca_emulator.rbac import load_assignments

    from .helpers import LocalCredential

    custom = {"principal": "*", "scope": RG_SCOPE, "role_bicep": str(ROLE_BICEP)}
    reader = {"principal": "*", "scope": RG_SCOPE, "builtin_role": "Monitoring Reader"}
    app = f"subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.App/containerApps/orders-api"
    for assignments, allowed in (([custom], False), ([custom, reader], True)):
        with _server(tmp_path, *load_assignments(assignments)) as emu:
            client = MonitorManagementClient(LocalCredential(), SUB, base_url=emu.base_url,
                                             connection_verify=emu.ca_path, retry_total=0)
            with client:
                if allowed:
                    assert client.metrics.list(app, metricnames="Requests").value[0].name.value == "Requests"
                else:
                    with pytest.raises(HttpResponseError) as denied:
                        client.metrics.list(app, metricnames="Requests")
                    _assert_forbidden(denied, "Microsoft.Insights/metrics/read", "containerApps/orders-api")
