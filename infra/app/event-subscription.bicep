// The Event Grid subscription that delivers ImagePushed events from the registry's system topic to
// the function's Event Grid trigger (`on_image_pushed` in function_app.py).
//
// Why this is not part of `azd provision`: an AzureFunction endpoint is validated when the
// subscription is created, and the function only exists once `azd deploy` has published the code.
// azd runs infra/hooks/postdeploy.sh (or .ps1 on Windows) after the deploy, and that hook
// deploys this file into the environment's resource group with `az deployment group create`.

// Deployed into the system topic's resource group: the environment's own, or that of a topic the
// registry already had (Event Grid allows one per source), which is used as it is.
@description('Name of the Event Grid system topic on the registry (from main.bicep).')
param systemTopicName string

@description('Name of the deployed function app.')
param functionAppName string

@description('Subscription and resource group of the function app and its storage account.')
param appSubscriptionId string = subscription().subscriptionId
param appResourceGroup string = resourceGroup().name

@description('Function (Event Grid trigger) that receives the events.')
param functionName string = 'on_image_pushed'

@description('Storage account and blob container for dead-lettered events.')
param storageAccountName string
param deadLetterContainerName string

param subscriptionName string = 'acr-deploy-image-pushed'

@description('Delivery attempts before an event is dead-lettered.')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Minutes an undelivered event is retried before it is dead-lettered.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
  scope: resourceGroup(appSubscriptionId, appResourceGroup)
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
  scope: resourceGroup(appSubscriptionId, appResourceGroup)
}

resource imagePushed 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: subscriptionName
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionApp.id}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.ContainerRegistry.ImagePushed'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    // Shared-key access is disabled on the account, so Event Grid writes dead-letters with the
    // system topic's managed identity (Storage Blob Data Contributor on this container, rbac.bicep).
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output id string = imagePushed.id
output name string = imagePushed.name
