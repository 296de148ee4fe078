// The Event Grid system topic on the existing container registry (the source of ImagePushed
// events), with a system-assigned identity that dead-letters undeliverable events into the
// storage account (Storage Blob Data Contributor on the dead-letter container, rbac.bicep).
// The optional notifications topic for outcome CloudEvents is notifications-topic.bicep.
// The event subscription from the system topic to the function's Event Grid trigger is NOT here:
// it can only be created once the function code is deployed (see event-subscription.bicep and
// infra/hooks/postdeploy.*).

param systemTopicName string

@description('Resource id of the existing container registry.')
param registryId string

@description('Location of the registry: a system topic lives where its source lives.')
param registryLocation string

param tags object = {}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: registryLocation
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: registryId
    topicType: 'Microsoft.ContainerRegistry.Registries'
  }
}

output systemTopicName string = systemTopic.name
output systemTopicPrincipalId string = systemTopic.identity.principalId
