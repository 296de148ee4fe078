// Assigns the acr-deploy custom Container Apps role to the function's identity on one target
// resource group (deployed once per entry of targetResourceGroupNames).

@description('Object id of the function app\'s system-assigned identity.')
param principalId string

@description('Resource id of the custom role from containerapps-role.bicep.')
param roleDefinitionId string

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'acr-deploy: roll out new Container App revisions in this resource group.'
  }
}
