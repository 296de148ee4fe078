"""Every URL the Container Apps adapter calls, recorded from a real run through the SDK against the
emulator, is allowed by the custom role parsed from infra/ at a scope the Bicep assigns it on.

ARM checks an action at the scope of the URL: a role assigned on resource groups does not cover
`/subscriptions/{sub}/providers/Microsoft.App/locations/{region}/containerappOperationStatuses/...`
(microsoft/azure-container-apps#215), so a URL outside the target resource groups fails here even
when its action is listed. Independent of any RBAC mode of the emulator: the URLs come from
azure-core's `raw_request_hook`, the actions and scopes from the Bicep.
"""

from __future__ import annotations

import fnmatch
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from infra_model import module, parse, variable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from test_containerapps_adapter import (  # noqa: E402
    DIGEST, SUB, RequestLog, make_adapter, seed_app,
)

from shared.domain.model import Target  # noqa: E402

_VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}


def required_action(method: str, path: str) -> tuple[str, str]:
    """(action ARM checks, scope it checks it at) for one Azure Resource Manager request path."""
    segments = [unquote(s) for s in path.strip("/").split("/")]
    lowered = [s.lower() for s in segments]
    provider_at = lowered.index("providers")
    scope = "/" + "/".join(segments[:provider_at])
    namespace, rest = segments[provider_at + 1], segments[provider_at + 2:]
    if method == "POST" and len(rest) % 2 == 1:
        return f"{namespace}/{'/'.join(rest[0:-1:2])}/{rest[-1]}/action", scope
    return f"{namespace}/{'/'.join(rest[0::2])}/{_VERBS[method]}", scope


def test_action_mapping_examples():
    rg_app = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/containerApps/app"
    assert required_action("PATCH", rg_app) == ("Microsoft.App/containerApps/write", "/subscriptions/s/resourceGroups/rg")
    assert required_action("POST", rg_app + "/revisions/r/activate")[0] == \
        "Microsoft.App/containerApps/revisions/activate/action"
    assert required_action("GET", rg_app + "/revisions")[0] == "Microsoft.App/containerApps/revisions/read"
    assert required_action("GET", "/subscriptions/s/providers/Microsoft.App/locations/westeurope/"
                           "containerappOperationStatuses/op") == (
        "Microsoft.App/locations/containerappOperationStatuses/read", "/subscriptions/s")


def _role_actions() -> list[str]:
    return variable(parse("app/containerapps-role.bicep"), "actions")


def _assigned_on_target_resource_groups(main_bicep) -> bool:
    """The Bicep assigns the role once per target resource group, at that resource group."""
    assignment = module(main_bicep, "containerAppsRoleAssignments")
    scope = assignment.body["scope"]["function"]
    return (scope["type"] == "resource_group"
            and scope["parameters"]["resource_group_name"] == assignment.loop["detail"]["item_name"]
            and assignment.loop["detail"]["array_name"] == "targetResourceGroupNames")


@pytest.fixture
def recorded_urls(emulator) -> tuple[str, list[tuple[str, str]]]:
    """Drive every adapter method through the SDK against the emulator, recording each request."""
    rg = f"rg-{uuid.uuid4().hex[:6]}"
    emulator.control.seed({"subscriptionId": SUB, "resourceGroups": [
        {"name": rg, "location": "westeurope", "environments": [{"name": "env"}]}]})
    log = RequestLog()
    adapter = make_adapter(emulator, rg, client_options={"raw_request_hook": log})
    try:
        target = seed_app(emulator, rg, mode="Single", tags={"acr-deploy.repository": "app"})
        first = f"{target.app}--first"
        adapter.get_app(target)
        adapter.get_access(target)
        adapter.list_tagged_apps()
        emulator.control.set_provisioning_delay(0.2)  # writes take a while: confirmations poll
        name = adapter.create_revision(target, f"reg.io/app@{DIGEST}", "v2", {first: 100}, switch_to_multiple=True)
        for _ in range(100):  # bounded: 0.2 s of provisioning, polled every 50 ms, at most 5 s
            revision = adapter.get_revision(target, name)
            if revision is not None and revision.ready and adapter.get_app(target).provisioning_state == "Succeeded":
                break
            time.sleep(0.05)
        assert adapter.set_traffic(target, {first: 50, name: 50}) is True
        assert adapter.set_traffic(target, {name: 100}, wait_s=5.0) is True
        adapter.set_revision_active(target, first, False)
        adapter.set_revision_active(target, first, True)
        assert adapter.get_revision(Target(SUB, rg, target.app), f"{target.app}--nope") is None
    finally:
        emulator.control.set_provisioning_delay(0.0)
        adapter.close()
    return rg, [(method, urlsplit(url).path) for method, url, _ in log.requests]


def test_every_url_the_adapter_calls_is_covered_by_the_role_where_it_is_assigned(main_bicep, recorded_urls):
    rg, requests = recorded_urls
    assert _assigned_on_target_resource_groups(main_bicep)
    actions = _role_actions()
    assignable = f"/subscriptions/{SUB}/resourceGroups/{rg}".lower()
    methods = {method for method, _ in requests}
    assert {"GET", "PATCH", "POST"} <= methods  # reads, writes and actions were all exercised
    uncovered = []
    for method, path in requests:
        action, scope = required_action(method, path)
        in_scope = scope.lower() == assignable or scope.lower().startswith(assignable + "/")
        allowed = any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in actions)
        if not (in_scope and allowed):
            uncovered.append(f"{method} {path} needs {action} at {scope}")
    assert not uncovered, "\n".join(uncovered)


def test_the_role_grants_nothing_at_subscription_scope_that_it_could_not_use():
    assert not [a for a in _role_actions() if "/locations/" in a.lower()]
