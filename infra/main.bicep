// acr-deploy: everything `azd up` puts into a subscription.
//
//   existing ACR ──ImagePushed──> Event Grid system topic ──(event subscription, made by the
//   postdeploy hook)──> Function App (Flex Consumption, Python 3.11) ──> Storage (history tables,
//   rollout queue) ──> Container Apps in the target resource groups (custom least-privilege role)
//
// Resources not created here: the registry (existing, in this subscription) and the target
// resource groups other than the environment's own (they must exist).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used to derive a unique token for resource names.')
param environmentName string

@minLength(1)
@description('Primary location for all resources (the system topic follows the registry).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create for acr-deploy; default rg-<environmentName>.')
param resourceGroupName string = ''

// ---- the existing container registry: its resource id, or its name and resource group ----

@description('Resource id of the existing Azure Container Registry (alternative to name + resource group).')
param registryResourceId string = ''

@description('Name of the existing registry (with registryResourceGroupName, when no resource id is given).')
param registryName string = ''

@description('Resource group of the existing registry (with registryName).')
param registryResourceGroupName string = ''

// ---- what the pipeline may deploy to ----

@description('Comma-separated list of the resource groups (in this subscription) whose Container Apps acr-deploy may update. The first is the default resource group. Empty: the environment\'s own resource group.')
param targetResourceGroups string = ''

// ---- options ----

@description('Deploy a sample Container Apps environment + app (Multiple revision mode, AcrPull identity).')
param deploySampleApp bool = false

@description('Repository in the registry that deploys to the sample app (also the app\'s name).')
param sampleRepository string = 'hello-acr-deploy'

@description('Deploy an Event Grid topic for deployment outcome CloudEvents (sets ACR_DEPLOY_EVENTS_ENDPOINT).')
param deployNotificationsTopic bool = false

@description('ACR_DEPLOY_TABLE_PREFIX: prefix of the history table names (letters and digits).')
param tablePrefix string = 'acrdeploy'

@description('ACR_DEPLOY_RULES_FILE: the rules file, relative to the function app root (deployed with the code).')
param rulesFile string = 'rules.yaml'

@description('ACR_DEPLOY_DISCOVERY_TTL_SECONDS: how long discovered app tags are cached.')
@minValue(0)
param discoveryTtlSeconds int = 60

@description('ACR_DEPLOY_ENTRA_SIGN_IN: Microsoft Entra sign-in in front of the page and the API (off by default).')
param entraSignIn bool = false

@description('ACR_DEPLOY_ENTRA_CLIENT_ID: the app registration used for sign-in.')
param entraClientId string = ''

@description('ACR_DEPLOY_RETENTION_DAYS: days the record-only partitions (rejections, day index) are kept.')
@minValue(1)
@maxValue(36500)
param retentionDays int = 90

@description('SKU of the pipeline\'s storage account.')
param storageSkuName string = 'Standard_LRS'

// Event Grid allows one system topic per source. When the registry already has one (an earlier
// event subscription made it, or another azd environment watches the same registry), the
// preprovision hook finds it and passes it here: it is used as it is, never created or deleted.
@description('Name of the registry\'s existing Event Grid system topic (preprovision hook); empty: create one.')
param existingSystemTopicName string = ''

@description('Resource group of that existing system topic (in the registry\'s subscription).')
param existingSystemTopicResourceGroup string = ''

@description('Principal id of that topic\'s system-assigned identity (it writes dead-letters).')
param existingSystemTopicPrincipalId string = ''

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var rgName = !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'

// Registry coordinates: from the resource id when given, else name + resource group (this subscription).
var registryIdParts = split(registryResourceId, '/')
var registrySubscriptionId = !empty(registryResourceId) ? registryIdParts[2] : subscription().subscriptionId
var registryRgName = !empty(registryResourceId) ? registryIdParts[4] : registryResourceGroupName
var registryShortName = !empty(registryResourceId) ? last(registryIdParts) : registryName

// Target resource groups: the list given, else this environment's group; the sample app's group is
// always included when the sample is deployed.
// (Resource group names cannot contain spaces, so spaces around the commas are dropped.)
var requestedTargetRgs = empty(trim(targetResourceGroups)) ? [] : split(replace(targetResourceGroups, ' ', ''), ',')
var targetResourceGroupNames = union(empty(requestedTargetRgs) ? [rgName] : requestedTargetRgs, deploySampleApp ? [rgName] : [])

var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
var storageAccountName = '${abbrs.storageStorageAccounts}${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var deadLetterContainerName = 'eventgrid-deadletter'
// The rollout queue (function_app.py's queue trigger) and the poison queue the host moves failing
// messages to; both are created up front so nothing depends on the host creating them.
var rolloutQueueName = 'acr-deploy-rollouts'
var queueNames = [
  rolloutQueueName
  '${rolloutQueueName}-poison'
]
// History tables are named ACR_DEPLOY_TABLE_PREFIX + a suffix the code defines
// (shared/adapters/tables.py: one table, '<prefix>history'; tests/infra checks they agree).
var historyTableSuffixes = [
  'history'
]
var historyTableNames = [for suffix in historyTableSuffixes: '${tablePrefix}${suffix}']
var systemTopicName = '${abbrs.eventGridSystemTopics}acr-${resourceToken}'
var useExistingSystemTopic = !empty(existingSystemTopicName)
var notificationsTopicName = '${abbrs.eventGridDomainsTopics}${resourceToken}'
var functionName = 'on_image_pushed'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: rgName
  location: location
  tags: tags
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryShortName
  scope: resourceGroup(registrySubscriptionId, registryRgName)
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: storageAccountName
    location: location
    tags: tags
    skuName: storageSkuName
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    queueNames: queueNames
    tableNames: historyTableNames
  }
}

module eventGrid 'app/eventgrid.bicep' = if (!useExistingSystemTopic) {
  name: 'eventgrid'
  scope: rg
  params: {
    systemTopicName: systemTopicName
    registryId: registry.id
    registryLocation: registry.location
    tags: tags
  }
}

module notificationsTopic 'app/notifications-topic.bicep' = if (deployNotificationsTopic) {
  name: 'notifications-topic'
  scope: rg
  params: {
    name: notificationsTopicName
    location: location
    tags: tags
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    serviceName: 'api'
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    rulesFile: rulesFile
    registries: '${registry.properties.loginServer}=${registry.id}'
    targetSubscriptionId: subscription().subscriptionId
    targetResourceGroupNames: targetResourceGroupNames
    discoveryTtlSeconds: discoveryTtlSeconds
    retentionDays: retentionDays
    tablePrefix: tablePrefix
    entraSignIn: entraSignIn
    entraClientId: entraClientId
    eventsEndpoint: deployNotificationsTopic ? notificationsTopic.outputs.endpoint : ''
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    functionPrincipalId: functionApp.outputs.principalId
    storageAccountName: storage.outputs.name
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    systemTopicPrincipalId: useExistingSystemTopic ? existingSystemTopicPrincipalId : eventGrid.outputs.systemTopicPrincipalId
    notificationsTopicName: deployNotificationsTopic ? notificationsTopic.outputs.name : ''
  }
}

module containerAppsRole 'app/containerapps-role.bicep' = {
  name: 'containerapps-role'
  params: {
    targetResourceGroupNames: targetResourceGroupNames
    roleNameSuffix: resourceToken
  }
  dependsOn: [
    rg
  ]
}

module containerAppsRoleAssignments 'app/containerapps-role-assignment.bicep' = [
  for targetRg in targetResourceGroupNames: {
    name: 'containerapps-role-${uniqueString(targetRg, resourceToken)}'
    scope: resourceGroup(targetRg)
    params: {
      principalId: functionApp.outputs.principalId
      roleDefinitionId: containerAppsRole.outputs.id
    }
    dependsOn: [
      rg
    ]
  }
]

module sampleApp 'app/sample-app.bicep' = if (deploySampleApp) {
  name: 'sample-app'
  scope: rg
  params: {
    environmentName: '${abbrs.appManagedEnvironments}${resourceToken}'
    appName: sampleRepository
    identityName: '${abbrs.managedIdentityUserAssignedIdentities}sample-${resourceToken}'
    location: location
    tags: tags
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    registryName: registryShortName
    registryResourceGroupName: registryRgName
    registrySubscriptionId: registrySubscriptionId
    registryLoginServer: registry.properties.loginServer
    sampleRepository: sampleRepository
  }
}

// ---- outputs: azd stores them in the environment; the hooks and docs/deploy.md use them ----
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output EVENTGRID_SYSTEM_TOPIC_NAME string = useExistingSystemTopic ? existingSystemTopicName : eventGrid.outputs.systemTopicName
// Where the postdeploy hook creates the event subscription, and whether tear-down may drop the topic.
output EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP string = useExistingSystemTopic ? existingSystemTopicResourceGroup : rg.name
output EVENTGRID_SYSTEM_TOPIC_SUBSCRIPTION_ID string = useExistingSystemTopic ? registrySubscriptionId : subscription().subscriptionId
output EVENTGRID_SYSTEM_TOPIC_CREATED bool = !useExistingSystemTopic
output EVENTGRID_DEADLETTER_CONTAINER string = storage.outputs.deadLetterContainerName
output EVENTGRID_FUNCTION_NAME string = functionName
output ACR_LOGIN_SERVER string = registry.properties.loginServer
output TARGET_RESOURCE_GROUP_NAMES string = join(targetResourceGroupNames, ',')
output EVENTGRID_NOTIFICATIONS_TOPIC_NAME string = deployNotificationsTopic ? notificationsTopic.outputs.name : ''
output SAMPLE_APP_NAME string = deploySampleApp ? sampleApp.outputs.appName : ''
output SAMPLE_APP_URL string = deploySampleApp ? sampleApp.outputs.appUrl : ''
