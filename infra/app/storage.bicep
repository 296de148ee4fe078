// The pipeline's own storage account: Functions host state and the Flex Consumption deployment
// package (blob), the rollout queue and its poison queue, the deployment history tables, and the
// blob container Event Grid dead-letters undeliverable ImagePushed events into.
// Shared-key access is off: every client (the Functions host, the code, Event Grid) uses Entra ID.

param name string
param location string = resourceGroup().location
param tags object = {}

@description('Blob container the Flex Consumption app package is deployed to.')
param deploymentContainerName string

@description('Blob container Event Grid writes dead-lettered events to.')
param deadLetterContainerName string

@description('Storage queues the pipeline uses (the rollout queue and its poison queue).')
param queueNames array

@description('History tables (names: letters and digits only).')
param tableNames array

@description('Storage SKU (Standard_LRS, or a GRS/ZRS SKU for resilience).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_LRS'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_35:No virtual network in this template: the Flex Consumption app (no VNet integration) and Event Grid dead-lettering reach the account over its public endpoint; access is Entra ID only (shared keys disabled) and TLS 1.2+.
  //checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: without VNet integration the function app needs the public endpoint; shared-key access is disabled, so the endpoint only accepts Entra ID tokens.
  //checkov:skip=CKV_AZURE_206:Pipeline state (history, queue, packages) is rebuildable and the sample is sized for cost: LRS by default; choose a GRS SKU with the storageSkuName parameter when a region outage must not lose history.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

output id string = storage.id
output name string = storage.name
output primaryBlobEndpoint string = storage.properties.primaryEndpoints.blob
output deploymentContainerName string = deploymentContainer.name
output deadLetterContainerName string = deadLetterContainer.name
