// Optional sample (deploySampleApp): a Container Apps environment and one app in Multiple revision
// mode that pulls from the registry with a user-assigned identity holding AcrPull, so a new user
// can `docker push <registry>/<sampleRepository>:1.0.0` and watch acr-deploy roll it out.
// The app is tagged `acr-deploy.repository` (tag discovery) and named like the repository
// (the zero-config convention), so either rule source finds it.

param environmentName string
param appName string
param identityName string
param location string = resourceGroup().location
param tags object = {}

@description('Log Analytics workspace (in this resource group) for the environment\'s logs.')
param logAnalyticsName string

@description('Existing registry: name, resource group, subscription and login server.')
param registryName string
param registryResourceGroupName string
param registrySubscriptionId string
param registryLoginServer string

@description('Repository in the registry that deploys to the sample app.')
param sampleRepository string

@description('Image the app starts with, before the first push (public, listens on port 80).')
param initialImage string = 'mcr.microsoft.com/k8se/quickstart:latest'

@description('Port the sample image listens on.')
param targetPort int = 80

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
  tags: tags
}

module acrPull 'acr-pull.bicep' = {
  name: 'sample-acr-pull'
  scope: resourceGroup(registrySubscriptionId, registryResourceGroupName)
  params: {
    registryName: registryName
    principalId: identity.properties.principalId
  }
}

resource managedEnvironment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: environmentName
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logAnalytics.properties.customerId
        sharedKey: logAnalytics.listKeys().primarySharedKey
      }
    }
  }
}

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: appName
  location: location
  tags: union(tags, {
    'acr-deploy.repository': sampleRepository
    'acr-deploy.tags': 'semver'
  })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    environmentId: managedEnvironment.id
    configuration: {
      activeRevisionsMode: 'Multiple'
      ingress: {
        external: true
        targetPort: targetPort
        transport: 'auto'
        allowInsecure: false
        traffic: [
          {
            latestRevision: true
            weight: 100
          }
        ]
      }
      registries: [
        {
          server: registryLoginServer
          identity: identity.id
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'app'
          image: initialImage
          resources: {
            cpu: json('0.25')
            memory: '0.5Gi'
          }
        }
      ]
      scale: {
        minReplicas: 0
        maxReplicas: 2
      }
    }
  }
  dependsOn: [
    acrPull
  ]
}

output appName string = app.name
output appUrl string = 'https://${app.properties.configuration.ingress.fqdn}'
output environmentName string = managedEnvironment.name
