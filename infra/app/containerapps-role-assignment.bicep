// Assigns the acr-deploy custom Container Apps role, and Monitoring Reader (canary analysis reads
// the apps' request metrics from Azure Monitor), to the function's identity on one target resource
// group (deployed once per entry of targetResourceGroupNames). Nothing is granted elsewhere.

@description('Object id of the function app\'s system-assigned identity.')
param principalId string

@description('Resource id of the custom role from containerapps-role.bicep.')
param roleDefinitionId string

// Monitoring Reader (built-in, the same id in every tenant): Microsoft.Insights/metrics/read on the
// Container Apps of this resource group, for `rollout.analysis`.
var monitoringReaderRoleId = '43d0d8ad-25c7-4714-9337-8ba259a9fe05'

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'acr-deploy: roll out new Container App revisions in this resource group.'
  }
}

resource monitoringReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, monitoringReaderRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringReaderRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'acr-deploy: read the request metrics of Container Apps in this resource group (canary analysis).'
  }
}
