// The acr-deploy Function App on the Flex Consumption plan (FC1), Python 3.11, with a
// system-assigned managed identity. Storage is reached through an identity-based connection
// (AzureWebJobsStorage__accountName); there is no connection string anywhere.
//
// The app settings below are exactly the settings shared/settings.py reads that make sense in
// Azure (tests/infra/test_app_settings.py compares the two lists both ways), plus the two
// Application Insights settings the Functions host itself reads.

param name string
param planName string
param location string = resourceGroup().location
param tags object = {}

@description('azd service name (azure.yaml) this app is deployed from.')
param serviceName string = 'api'

@description('Storage account for the Functions host, the deployment package and the pipeline state.')
param storageAccountName string

@description('Blob container (in storageAccountName) the app package is deployed to.')
param deploymentContainerName string

param applicationInsightsName string

@description('Flex Consumption instance size.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound of Flex Consumption scale-out.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

// ---- values of the acr-deploy settings (see shared/settings.py for what each one means) ----

@description('ACR_DEPLOY_RULES_FILE: rules file path relative to the app root (deployed with the code).')
param rulesFile string = 'rules.yaml'

@description('ACR_DEPLOY_REGISTRIES: LOGIN_SERVER=REGISTRY_RESOURCE_ID entries, comma-separated.')
param registries string

@description('ACR_DEPLOY_SUBSCRIPTION_ID: subscription of the target Container Apps.')
param targetSubscriptionId string

@description('Resource groups of the target Container Apps; the first is the default one.')
@minLength(1)
param targetResourceGroupNames array

@description('ACR_DEPLOY_DISCOVERY_TTL_SECONDS: how long discovered app tags are cached.')
param discoveryTtlSeconds int = 60

@description('ACR_DEPLOY_RETENTION_DAYS: days the record-only partitions (rejections, day index) are kept.')
@minValue(1)
param retentionDays int = 90

@description('ACR_DEPLOY_TABLE_PREFIX: prefix of the history table names.')
param tablePrefix string

@description('ACR_DEPLOY_EVENTS_ENDPOINT: Event Grid topic endpoint for outcome CloudEvents; empty = not published.')
param eventsEndpoint string = ''

@description('Microsoft Entra sign-in (App Service authentication) in front of the history page and the API; off by default. The signed-in name is what approvals and rollbacks record as who acted.')
param entraSignIn bool = false

@description('Client id of the Entra app registration used for sign-in (required when entraSignIn is true).')
param entraClientId string = ''

@description('Tenant of that app registration.')
param entraTenantId string = subscription().tenantId

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var baseAppSettings = {
  // Functions host + code: identity-based storage connection (the code builds account URLs from it).
  AzureWebJobsStorage__accountName: storage.name
  // Read by the Functions host (not by the code): telemetry, sent with Entra ID since local auth is off.
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
  // acr-deploy settings.
  ACR_DEPLOY_ARM_CREDENTIAL: 'default'
  ACR_DEPLOY_ARM_ENDPOINT: environment().resourceManager
  ACR_DEPLOY_RULES_FILE: rulesFile
  ACR_DEPLOY_REGISTRIES: registries
  ACR_DEPLOY_SUBSCRIPTION_ID: targetSubscriptionId
  ACR_DEPLOY_RESOURCE_GROUP: first(targetResourceGroupNames)
  ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS: join(targetResourceGroupNames, ',')
  ACR_DEPLOY_DISCOVERY_TTL_SECONDS: string(discoveryTtlSeconds)
  ACR_DEPLOY_RETENTION_DAYS: string(retentionDays)
  ACR_DEPLOY_TABLE_PREFIX: tablePrefix
  // Traces and metrics of each push to Application Insights (the connection string above).
  ACR_DEPLOY_TELEMETRY: 'auto'
}

// Only set when a notifications topic is deployed: unset means "do not publish outcomes".
var eventsAppSettings = empty(eventsEndpoint) ? {} : {
  ACR_DEPLOY_EVENTS_ENDPOINT: eventsEndpoint
}

var appSettings = union(baseAppSettings, eventsAppSettings)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225:Zone redundancy on Flex Consumption is available in some regions only and bills always-ready instances; the pipeline tolerates an outage (Event Grid retries deliveries for 24 h, then dead-letters; queued rollouts wait in the queue).
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_17:Client certificates would break Event Grid delivery and the function-key HTTP API; callers authenticate with function keys.
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales per trigger from zero; there is no fixed instance count to keep (Event Grid and the queue redeliver while instances start).
  //checkov:skip=CKV_AZURE_213:The App Service health check probes a fixed pool of instances; a Flex Consumption app has none and exposes no health endpoint, and failed invocations are retried by Event Grid and the queue.
  //checkov:skip=CKV_AZURE_222:Event Grid pushes ImagePushed events to the function and release managers call the history API, so the app keeps a public endpoint (HTTPS only, function keys).
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        for setting in items(appSettings): {
          name: setting.key
          value: setting.value
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No basic (user/password) publishing: azd deploys the package to the blob container with Entra ID.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

// Entra sign-in, when asked for. Event Grid's webhook (/runtime/webhooks/eventgrid, guarded by the
// system key) must stay reachable without a browser login, so it is excluded.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (entraSignIn) {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    //checkov:skip=CKV_AZURE_66:This is the authsettingsV2 config, not the web config that holds request tracing; a Flex Consumption app logs requests to Application Insights.
    //checkov:skip=CKV_AZURE_63:This is the authsettingsV2 config, not the web config that holds HTTP logging; a Flex Consumption app logs requests to Application Insights.
    //checkov:skip=CKV_AZURE_222:This resource is the site's authsettingsV2 (Entra sign-in), not a web app; the function app above carries and passes this check.
    //checkov:skip=CKV_AZURE_80:This resource is the site's authsettingsV2 (Entra sign-in), not a web app; the function app above carries and passes this check.
    //checkov:skip=CKV_AZURE_13:This resource is the site's authsettingsV2 (Entra sign-in), not a web app; the function app above carries and passes this check.
    //checkov:skip=CKV_AZURE_88:This resource is the site's authsettingsV2 (Entra sign-in), not a web app; the function app above carries and passes this check.
    //checkov:skip=CKV_AZURE_65:This resource is the site's authsettingsV2 (Entra sign-in), not a web app; the function app above carries and passes this check.
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: [
        '/runtime/webhooks/eventgrid'
      ]
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${entraTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${entraClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output id string = functionApp.id
output name string = functionApp.name
output principalId string = functionApp.identity.principalId
output defaultHostName string = functionApp.properties.defaultHostName
