// Custom role "acr-deploy Container Apps rollout": exactly the Microsoft.App actions the
// pipeline's azure-mgmt-appcontainers calls need, and nothing more. No built-in role is this
// narrow (Container Apps Contributor can also delete apps, list secrets and manage environments).
// Assignable only on the target resource groups; assigned there by containerapps-role-assignment.bicep.
targetScope = 'subscription'

@description('Resource groups (in this subscription) the role may be assigned on.')
@minLength(1)
param targetResourceGroupNames array

@description('Unique per azd environment, so two environments in one subscription do not collide.')
param roleNameSuffix string

var actions = [
  // containerApps get, list (tag discovery): GET .../containerApps[/{name}]
  'Microsoft.App/containerApps/read'
  // containerApps update (PATCH: new revision template, traffic, revision mode) and createOrUpdate (PUT)
  'Microsoft.App/containerApps/write'
  // containerAppsRevisions list / get (readiness, health, which revisions serve)
  'Microsoft.App/containerApps/revisions/read'
  // containerAppsAuthConfigs list: is built-in authentication on? (an app the smoke checks cannot
  // reach fails before a revision is created). Read-only; the configs hold secret names, not values.
  'Microsoft.App/containerApps/authConfigs/read'
  // containerAppsRevisions activate (rollback to a previous revision)
  'Microsoft.App/containerApps/revisions/activate/action'
  // containerAppsRevisions deactivate (failed revision, clean-up of old ones)
  'Microsoft.App/containerApps/revisions/deactivate/action'
  // No Microsoft.App/locations/containerappOperation* reads: those URLs sit at subscription scope,
  // outside every scope this role is assigned on (microsoft/azure-container-apps#215). The
  // pipeline never polls them; it confirms a write by reading the app (containerApps/read).
]

resource role 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'acr-deploy-container-apps-rollout', roleNameSuffix)
  properties: {
    roleName: 'acr-deploy Container Apps rollout (${roleNameSuffix})'
    description: 'Read Container Apps, update them with new revisions and traffic, and activate or deactivate revisions. Used by the acr-deploy function app.'
    type: 'CustomRole'
    permissions: [
      {
        actions: actions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [for rgName in targetResourceGroupNames: subscriptionResourceId('Microsoft.Resources/resourceGroups', rgName)]
  }
}

output id string = role.id
output roleDefinitionGuid string = role.name
