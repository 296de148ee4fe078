// Optional (deployNotificationsTopic): an Event Grid custom topic that receives the pipeline's
// deployment outcome CloudEvents (AcrDeploy.Deployment.Succeeded / Failed / RolledBack). Local
// (key) auth is off: the function publishes with its managed identity (EventGrid Data Sender on
// this topic only, assigned in rbac.bicep once the function exists; the function's
// ACR_DEPLOY_EVENTS_ENDPOINT setting needs this topic first).

param name string
param location string = resourceGroup().location
param tags object = {}

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  //checkov:skip=CKV_AZURE_193:Publishing uses Entra ID only (local auth disabled) from a function app without VNet integration, so the topic keeps its public endpoint.
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

output name string = topic.name
output endpoint string = topic.properties.endpoint
