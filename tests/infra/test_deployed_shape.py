"""What `azd up` deploys, checked on the parsed Bicep: the resources, their key properties, the
role assignments (role ids and scopes) and the hook-created Event Grid subscription."""

from __future__ import annotations

import json

import re

import pytest

from infra_model import INFRA, REPO_ROOT, accessor, bicep_files, module, modules, parse, resource, resources, variable, walk

# Built-in roles, by id (the same in every tenant).
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
EVENTGRID_DATA_SENDER = "d5a91429-5739-47e2-a06b-3470a27159e7"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
MONITORING_READER = "43d0d8ad-25c7-4714-9337-8ba259a9fe05"
CUSTOM_CONTAINER_APPS_ROLE = "custom: containerapps-role.bicep"

# Every role assignment in infra/: (file, symbol) -> (role, scope symbol, principal param, condition).
# Scope None = the deployment's own scope (the target resource group, for the module deployed per group).
EXPECTED_ASSIGNMENTS = {
    ("app/rbac.bicep", "functionBlobDataOwner"): (STORAGE_BLOB_DATA_OWNER, "storage", "functionPrincipalId"),
    ("app/rbac.bicep", "functionQueueDataContributor"): (
        STORAGE_QUEUE_DATA_CONTRIBUTOR,
        "storage",
        "functionPrincipalId",
    ),
    ("app/rbac.bicep", "functionTableDataContributor"): (
        STORAGE_TABLE_DATA_CONTRIBUTOR,
        "storage",
        "functionPrincipalId",
    ),
    ("app/rbac.bicep", "functionMetricsPublisher"): (
        MONITORING_METRICS_PUBLISHER,
        "applicationInsights",
        "functionPrincipalId",
    ),
    ("app/rbac.bicep", "functionEventGridDataSender"): (
        EVENTGRID_DATA_SENDER,
        "notificationsTopic",
        "functionPrincipalId",
    ),
    ("app/rbac.bicep", "systemTopicDeadLetterWriter"): (
        STORAGE_BLOB_DATA_CONTRIBUTOR,
        "deadLetterContainer",
        "systemTopicPrincipalId",
    ),
    ("app/acr-pull.bicep", "acrPull"): (ACR_PULL, "registry", "principalId"),
    ("app/containerapps-role-assignment.bicep", "assignment"): (CUSTOM_CONTAINER_APPS_ROLE, None, "principalId"),
    # Canary analysis reads request metrics (Microsoft.Insights/metrics/read) on the target groups only.
    ("app/containerapps-role-assignment.bicep", "monitoringReader"): (MONITORING_READER, None, "principalId"),
}

# The Microsoft.App action behind each azure-mgmt-appcontainers operation the code may call.
SDK_ACTIONS = {
    "get": "Microsoft.App/containerApps/read",
    "list_by_resource_group": "Microsoft.App/containerApps/read",
    "list_by_subscription": "Microsoft.App/containerApps/read",
    "begin_update": "Microsoft.App/containerApps/write",
    "begin_create_or_update": "Microsoft.App/containerApps/write",
    "begin_delete": "Microsoft.App/containerApps/delete",
    "list_revisions": "Microsoft.App/containerApps/revisions/read",
    "get_revision": "Microsoft.App/containerApps/revisions/read",
    "activate_revision": "Microsoft.App/containerApps/revisions/activate/action",
    "deactivate_revision": "Microsoft.App/containerApps/revisions/deactivate/action",
    "restart_revision": "Microsoft.App/containerApps/revisions/restart/action",
    "list_by_container_app": "Microsoft.App/containerApps/authConfigs/read",  # container_apps_auth_configs
}


def _actions_the_code_calls() -> set[str]:
    """Derived from the adapter's source, so the role cannot drift from the code either way. The
    begin_* calls run without the SDK's poller (test_no_begin_call_polls), so no operation-status
    read (a subscription-scope URL) is needed."""
    source = (REPO_ROOT / "shared" / "adapters" / "containerapps.py").read_text()
    called = set(re.findall(r"\.(\w+)\b", source)) & set(SDK_ACTIONS)  # calls and method references
    return {SDK_ACTIONS[name] for name in called}


def test_no_begin_call_polls():
    """A begin_* call with the SDK's poller would read operation-status URLs at subscription
    scope, where the role is not assigned: every one passes polling=False."""
    source = (REPO_ROOT / "shared" / "adapters" / "containerapps.py").read_text()
    calls = re.findall(r"\.begin_\w+\((.*?)\)\)", source, flags=re.S)
    assert calls and all("polling=False" in args for args in calls)


EXPECTED_CONTAINER_APPS_ACTIONS = _actions_the_code_calls()

GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _role_of(parsed, role_definition_id):
    fn = role_definition_id.get("function") if isinstance(role_definition_id, dict) else None
    if fn and fn["type"] == "subscription_resource_id":
        assert fn["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        return variable(parsed, fn["parameters"]["resource_name_1"])
    if role_definition_id == "roleDefinitionId":  # a parameter: the custom role's resource id
        return CUSTOM_CONTAINER_APPS_ROLE
    raise AssertionError(f"unexpected roleDefinitionId {role_definition_id!r}")


def test_role_assignments_are_exactly_the_listed_ones():
    found = {}
    for path in bicep_files():
        parsed = parse(path)
        rel = path.relative_to(INFRA).as_posix()
        for decl in resources(parsed, "Microsoft.Authorization/roleAssignments"):
            props = decl.body["properties"]
            assert props["principalType"] == "ServicePrincipal", (rel, decl.symbol)
            found[(rel, decl.symbol)] = (
                _role_of(parsed, props["roleDefinitionId"]),
                decl.body.get("scope"),
                props["principalId"],
            )
    assert found == EXPECTED_ASSIGNMENTS


def test_assignment_scopes_are_the_resources_they_are_needed_on():
    rbac = parse(INFRA / "app" / "rbac.bicep")
    kinds = {d.symbol: (d.type, d.existing) for d in resources(rbac)}
    assert kinds["storage"] == ("Microsoft.Storage/storageAccounts", True)
    assert kinds["applicationInsights"] == ("Microsoft.Insights/components", True)
    assert kinds["notificationsTopic"] == ("Microsoft.EventGrid/topics", True)
    assert kinds["deadLetterContainer"] == ("Microsoft.Storage/storageAccounts/blobServices/containers", True)
    assert resource(rbac, "deadLetterContainer").body["name"] == "deadLetterContainerName"
    # EventGrid Data Sender only when a notifications topic is deployed.
    sender = resource(rbac, "functionEventGridDataSender")
    assert sender.condition is not None and "notificationsTopicName" in str(sender.condition)
    acr = parse(INFRA / "app" / "acr-pull.bicep")
    assert resource(acr, "registry").type == "Microsoft.ContainerRegistry/registries"


def test_role_definition_ids_are_named_variables_with_a_comment_each():
    for path in bicep_files():
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if re.search(GUID, line, re.I) is None:
                continue
            assert re.match(rf"\s*var \w+RoleId = '{GUID}'", line, re.I), f"{path.name}:{i + 1}: bare role GUID"
            assert lines[i - 1].lstrip().startswith("//"), f"{path.name}:{i + 1}: role id without a comment above"


def test_custom_container_apps_role_has_exactly_the_actions_the_code_needs():
    role_file = parse(INFRA / "app" / "containerapps-role.bicep")
    assert role_file["globals"]["scope"]["value"] == "subscription"
    role = resource(role_file, "role")
    assert role.type == "Microsoft.Authorization/roleDefinitions"
    props = role.body["properties"]
    assert props["type"] == "CustomRole"
    (permission,) = props["permissions"]
    actions = variable(role_file, permission["actions"])
    assert len(actions) == len(set(actions))
    assert set(actions) == EXPECTED_CONTAINER_APPS_ACTIONS
    assert not any("*" in a for a in actions)
    assert permission["notActions"] == permission["dataActions"] == permission["notDataActions"] == []
    # Assignable only on the target resource groups.
    scopes = props["assignableScopes"]
    assert scopes["loop_type"]["detail"]["array_name"] == "targetResourceGroupNames"
    assert scopes["config"]["function"]["type"] == "subscription_resource_id"
    assert scopes["config"]["function"]["parameters"]["resource_type"] == "Microsoft.Resources/resourceGroups"


def test_custom_role_is_assigned_on_each_target_resource_group(main_bicep):
    assignments = module(main_bicep, "containerAppsRoleAssignments")
    assert assignments.type == "app/containerapps-role-assignment.bicep"
    assert assignments.loop["detail"] == {"item_name": "targetRg", "array_name": "targetResourceGroupNames"}
    scope = assignments.body["scope"]["function"]
    assert scope["type"] == "resource_group" and scope["parameters"]["resource_group_name"] == "targetRg"
    assert accessor(assignments.body["params"]["roleDefinitionId"]) == "containerAppsRole.outputs.id"
    assert accessor(assignments.body["params"]["principalId"]) == "functionApp.outputs.principalId"
    role = module(main_bicep, "containerAppsRole")
    assert role.body["params"]["targetResourceGroupNames"] == "targetResourceGroupNames"
    # The list comes from a parameter (comma-separated, since azd fills parameters from strings).
    assert main_bicep["parameters"]["targetResourceGroups"]["type"] == "string"
    assert "targetResourceGroups" in str(variable(main_bicep, "requestedTargetRgs"))


def test_function_app_on_flex_consumption_python_311(main_bicep):
    fn = parse(INFRA / "app" / "function.bicep")
    plan = resource(fn, "plan")
    assert plan.type == "Microsoft.Web/serverfarms"
    assert plan.body["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan.body["properties"]["reserved"] is True
    site = resource(fn, "functionApp")
    assert site.type == "Microsoft.Web/sites"
    assert site.body["kind"] == "functionapp,linux"
    assert site.body["identity"] == {"type": "SystemAssigned"}
    props = site.body["properties"]
    assert accessor(props["serverFarmId"]) == "plan.id"
    assert props["httpsOnly"] is True
    config = props["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {"type": "SystemAssignedIdentity"}
    for name in ("scm", "ftp"):
        policy = next(d for d in resources(fn, "Microsoft.Web/sites/basicPublishingCredentialsPolicies") if d.body["name"] == name)
        assert policy.body["properties"] == {"allow": False}
    # Wired to Application Insights (and through it to Log Analytics).
    assert module(main_bicep, "functionApp").body["params"]["applicationInsightsName"] is not None


def test_storage_identity_only_with_queues_tables_and_containers(main_bicep):
    st = parse(INFRA / "app" / "storage.bicep")
    account = resource(st, "storage").body["properties"]
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    types = {d.type for d in resources(st)}
    assert {
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        "Microsoft.Storage/storageAccounts/queueServices/queues",
        "Microsoft.Storage/storageAccounts/tableServices/tables",
    } <= types
    assert resource(st, "queues").loop["detail"]["array_name"] == "queueNames"
    assert resource(st, "tables").loop["detail"]["array_name"] == "tableNames"
    assert resource(st, "deadLetterContainer").body["name"] == "deadLetterContainerName"
    params = module(main_bicep, "storage").body["params"]
    assert params["queueNames"] == "queueNames"
    assert variable(main_bicep, "queueNames") == ["rolloutQueueName", "${rolloutQueueName}-poison"]
    assert variable(main_bicep, "rolloutQueueName") == "acr-deploy-rollouts"
    assert params["tableNames"] == "historyTableNames"
    assert "tablePrefix" in str(variable(main_bicep, "historyTableNames"))


def test_monitoring_workspace_based_app_insights():
    mon = parse(INFRA / "app" / "monitoring.bicep")
    assert resource(mon, "logAnalytics").type == "Microsoft.OperationalInsights/workspaces"
    ai = resource(mon, "applicationInsights")
    assert ai.type == "Microsoft.Insights/components"
    assert accessor(ai.body["properties"]["WorkspaceResourceId"]) == "logAnalytics.id"
    assert ai.body["properties"]["DisableLocalAuth"] is True


def test_system_topic_on_the_existing_registry(main_bicep):
    eg = parse(INFRA / "app" / "eventgrid.bicep")
    topic = resource(eg, "systemTopic")
    assert topic.type == "Microsoft.EventGrid/systemTopics"
    assert topic.body["properties"] == {"source": "registryId", "topicType": "Microsoft.ContainerRegistry.Registries"}
    assert topic.body["identity"] == {"type": "SystemAssigned"}
    assert topic.body["location"] == "registryLocation"
    params = module(main_bicep, "eventGrid").body["params"]
    assert accessor(params["registryId"]) == "registry.id"
    registry = resource(main_bicep, "registry")
    assert registry.existing and registry.type == "Microsoft.ContainerRegistry/registries"
    # Either a resource id or a name + resource group identifies the registry.
    for name in ("registryResourceId", "registryName", "registryResourceGroupName"):
        assert main_bicep["parameters"][name]["default"] == ""


def test_an_existing_system_topic_is_used_instead_of_creating_a_second(main_bicep):
    """Event Grid allows one system topic per source: with the preprovision hook's topic the module
    that creates one is skipped, and every consumer reads the existing topic's name and identity."""
    use_existing = {"operator": {"type": "not", "operands": {"bool_value": {"function": {
        "type": "empty", "parameters": {"item_to_test": "existingSystemTopicName"}}}}}}
    assert variable(main_bicep, "useExistingSystemTopic") == use_existing
    not_existing = {"operator": {"type": "not", "operands": {"bool_value": "useExistingSystemTopic"}}}
    assert module(main_bicep, "eventGrid").condition == not_existing
    for name in ("existingSystemTopicName", "existingSystemTopicResourceGroup", "existingSystemTopicPrincipalId"):
        assert main_bicep["parameters"][name]["default"] == ""
    principal = module(main_bicep, "rbac").body["params"]["systemTopicPrincipalId"]["operator"]["operands"]
    assert (principal["condition"], principal["true_value"]) == ("useExistingSystemTopic", "existingSystemTopicPrincipalId")
    outputs = main_bicep["outputs"]
    topic = outputs["EVENTGRID_SYSTEM_TOPIC_NAME"]["value"]["operator"]["operands"]
    assert (topic["condition"], topic["true_value"]) == ("useExistingSystemTopic", "existingSystemTopicName")
    assert outputs["EVENTGRID_SYSTEM_TOPIC_CREATED"]["value"] == not_existing
    group = outputs["EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP"]["value"]["operator"]["operands"]
    assert group["true_value"] == "existingSystemTopicResourceGroup"
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["existingSystemTopicName"]["value"] == "${EVENTGRID_EXISTING_SYSTEM_TOPIC_NAME}"
    for hook in ("preprovision.sh", "preprovision.ps1"):
        text = (INFRA / "hooks" / hook).read_text()
        for setting in ("EVENTGRID_EXISTING_SYSTEM_TOPIC_NAME", "EVENTGRID_EXISTING_SYSTEM_TOPIC_RESOURCE_GROUP",
                        "EVENTGRID_EXISTING_SYSTEM_TOPIC_PRINCIPAL_ID"):
            assert f"azd env set {setting}" in text, (hook, setting)


def test_event_subscription_is_created_by_the_postdeploy_hook_not_by_provision(main_bicep):
    for path in bicep_files():
        for mod in modules(parse(path)):
            assert not mod.type.endswith("event-subscription.bicep"), f"{path.name} deploys the subscription at provision time"
    for hook in ("postdeploy.sh", "postdeploy.ps1"):
        text = (INFRA / "hooks" / hook).read_text()
        assert "event-subscription.bicep" in text and "az deployment group create" in text
        for param in ("systemTopicName", "functionAppName", "functionName", "storageAccountName", "deadLetterContainerName"):
            assert f"{param}=" in text, (hook, param)
    outputs = main_bicep["outputs"]
    for name in ("AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME", "EVENTGRID_SYSTEM_TOPIC_NAME",
                 "EVENTGRID_FUNCTION_NAME", "AZURE_STORAGE_ACCOUNT_NAME", "EVENTGRID_DEADLETTER_CONTAINER"):
        assert name in outputs, name
    assert variable(main_bicep, "functionName") == "on_image_pushed"


def test_event_subscription_shape():
    sub_file = parse(INFRA / "app" / "event-subscription.bicep")
    assert sub_file["parameters"]["functionName"]["default"] == "on_image_pushed"
    sub = resource(sub_file, "imagePushed")
    assert sub.type == "Microsoft.EventGrid/systemTopics/eventSubscriptions"
    assert sub.body["parent"] == "systemTopic"
    assert resource(sub_file, "systemTopic").existing
    props = sub.body["properties"]
    destination = props["destination"]
    assert destination["endpointType"] == "AzureFunction"
    assert destination["properties"]["resourceId"] == "${functionApp.id}/functions/${functionName}"
    assert props["filter"]["includedEventTypes"] == ["Microsoft.ContainerRegistry.ImagePushed"]
    assert set(props["retryPolicy"]) == {"maxDeliveryAttempts", "eventTimeToLiveInMinutes"}
    dead = props["deadLetterWithResourceIdentity"]
    assert dead["identity"] == {"type": "SystemAssigned"}
    assert dead["deadLetterDestination"]["endpointType"] == "StorageBlob"
    assert accessor(dead["deadLetterDestination"]["properties"]["resourceId"]) == "storage.id"
    assert dead["deadLetterDestination"]["properties"]["blobContainerName"] == "deadLetterContainerName"


def test_notifications_topic_is_optional_cloudevents_and_keyless(main_bicep):
    mod = module(main_bicep, "notificationsTopic")
    assert mod.condition == "deployNotificationsTopic"
    assert main_bicep["parameters"]["deployNotificationsTopic"]["default"] is False
    topic = resource(parse(INFRA / mod.type), "topic")
    assert topic.type == "Microsoft.EventGrid/topics"
    assert topic.body["properties"]["inputSchema"] == "CloudEventSchemaV1_0"
    assert topic.body["properties"]["disableLocalAuth"] is True


def test_optional_sample_app_pulls_with_acrpull_identity_in_multiple_mode(main_bicep):
    mod = module(main_bicep, "sampleApp")
    assert mod.condition == "deploySampleApp"
    assert main_bicep["parameters"]["deploySampleApp"]["default"] is False
    # The sample's resource group is always a target, so the pipeline may update the app.
    assert "deploySampleApp" in str(variable(main_bicep, "targetResourceGroupNames"))
    sample = parse(INFRA / mod.type)
    identity = resource(sample, "identity")
    assert identity.type == "Microsoft.ManagedIdentity/userAssignedIdentities"
    acr_pull = module(sample, "acrPull")
    assert acr_pull.type == "acr-pull.bicep"
    assert accessor(acr_pull.body["params"]["principalId"]) == "identity.properties.principalId"
    assert acr_pull.body["scope"]["function"]["type"] == "resource_group"
    env = resource(sample, "managedEnvironment")
    assert env.type == "Microsoft.App/managedEnvironments"
    app = resource(sample, "app")
    assert app.type == "Microsoft.App/containerApps"
    config = app.body["properties"]["configuration"]
    assert config["activeRevisionsMode"] == "Multiple"
    (registry,) = config["registries"]
    assert registry["server"] == "registryLoginServer"
    assert accessor(registry["identity"]) == "identity.id"
    assert "identity.id" in str(app.body["identity"]["userAssignedIdentities"])
    assert "acrPull" in app.body["dependsOn"]
    assert "acr-deploy.repository" in str(app.body["tags"])


def test_no_secrets_or_connection_strings_in_templates():
    for path in bicep_files():
        parsed = parse(path)
        for node in walk(parsed):
            if isinstance(node, dict):
                for key in node:
                    assert "connectionstring" not in str(key).lower() or key == "APPLICATIONINSIGHTS_CONNECTION_STRING", (path.name, key)
        text = path.read_text()
        assert "listKeys" not in text or path.name == "sample-app.bicep", path.name  # only the CAE log workspace
        assert "AccountKey=" not in text and "SharedAccessSignature" not in text, path.name


@pytest.mark.parametrize("hook", ["preprovision", "postdeploy"])
def test_hooks_exist_for_both_shells(hook):
    assert (INFRA / "hooks" / f"{hook}.sh").is_file()
    assert (INFRA / "hooks" / f"{hook}.ps1").is_file()
    assert (REPO_ROOT / "infra" / "hooks" / f"{hook}.sh").stat().st_mode & 0o111
