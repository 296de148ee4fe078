# azd predown hook (PowerShell): before `azd down` deletes the environment's resource group, remove
# what this environment added to resources it does not own. When the registry already had an
# Event Grid system topic (EVENTGRID_SYSTEM_TOPIC_CREATED=false, found by the preprovision hook),
# the topic is left alone and only this environment's event subscription on it is deleted. A topic
# this environment created lives in its resource group and goes with it.
$ErrorActionPreference = 'Stop'

if (-not $env:AZURE_FUNCTION_APP_NAME -and (Get-Command azd -ErrorAction SilentlyContinue)) {
    foreach ($line in (& azd env get-values)) {
        if ($line -match '^([A-Za-z_][A-Za-z0-9_]*)=(.*)$') {
            [Environment]::SetEnvironmentVariable($Matches[1], ($Matches[2] -replace '^"|"$', ''))
        }
    }
}

if ($env:EVENTGRID_SYSTEM_TOPIC_CREATED -ne 'false') { exit 0 }  # ours: deleted with the resource group
foreach ($name in 'EVENTGRID_SYSTEM_TOPIC_NAME', 'EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME') {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        Write-Host "$name is not set: cannot tell which event subscription to remove from the registry's system topic; nothing removed."
        exit 0
    }
}
$subscriptionName = "acr-deploy-$($env:AZURE_FUNCTION_APP_NAME)"
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Write-Host "The Azure CLI (az) is not installed: remove the event subscription $subscriptionName from the system topic $($env:EVENTGRID_SYSTEM_TOPIC_NAME) yourself."
    exit 0
}
$target = @('--resource-group', $env:EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP)
if ($env:EVENTGRID_SYSTEM_TOPIC_SUBSCRIPTION_ID) { $target += @('--subscription', $env:EVENTGRID_SYSTEM_TOPIC_SUBSCRIPTION_ID) }
Write-Host "Removing event subscription $subscriptionName from the system topic $($env:EVENTGRID_SYSTEM_TOPIC_NAME) (the topic stays: this environment did not create it)..."
az eventgrid system-topic event-subscription delete @target `
    --system-topic-name $env:EVENTGRID_SYSTEM_TOPIC_NAME --name $subscriptionName --yes
exit $LASTEXITCODE
