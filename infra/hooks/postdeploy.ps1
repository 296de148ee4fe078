# azd postdeploy hook (PowerShell): subscribe the function's Event Grid trigger to the registry's
# ImagePushed events.
#
# Why here and not in `azd provision`: an Event Grid subscription with an AzureFunction endpoint
# (resource id <functionAppId>/functions/on_image_pushed) is validated when it is created, and that
# function only exists after `azd deploy` has published the code. So provisioning creates the
# system topic (infra/app/eventgrid.bicep) or finds the registry's existing one (preprovision
# hook), and this hook, which azd runs after every deploy, deploys infra/app/event-subscription.bicep
# into the topic's resource group. Re-running it is harmless: the deployment is idempotent.
#
# Needs the Azure CLI, signed in to the same tenant as azd (`az login`).
$ErrorActionPreference = 'Stop'

$template = Join-Path $PSScriptRoot '..' 'app' 'event-subscription.bicep'

# azd passes the environment's values to hooks; older azd versions do not, so load them if missing.
if (-not $env:AZURE_FUNCTION_APP_NAME -and (Get-Command azd -ErrorAction SilentlyContinue)) {
    foreach ($line in (& azd env get-values)) {
        if ($line -match '^([A-Za-z_][A-Za-z0-9_]*)=(.*)$') {
            [Environment]::SetEnvironmentVariable($Matches[1], ($Matches[2] -replace '^"|"$', ''))
        }
    }
}

if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Write-Error 'The Azure CLI (az) is required to create the Event Grid subscription; see docs/deploy.md.'
    exit 1
}

$required = 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'EVENTGRID_SYSTEM_TOPIC_NAME',
            'EVENTGRID_FUNCTION_NAME', 'AZURE_STORAGE_ACCOUNT_NAME', 'EVENTGRID_DEADLETTER_CONTAINER'
foreach ($name in $required) {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        Write-Error "$name is not set: run 'azd provision' first."
        exit 1
    }
}

if ($env:AZURE_SUBSCRIPTION_ID) {
    az account set --subscription $env:AZURE_SUBSCRIPTION_ID
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

# Defaults for environments provisioned before these outputs existed: the topic was ours, in the
# environment's resource group.
$topicRg = if ($env:EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP) { $env:EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP } else { $env:AZURE_RESOURCE_GROUP }
$topicSub = if ($env:EVENTGRID_SYSTEM_TOPIC_SUBSCRIPTION_ID) { $env:EVENTGRID_SYSTEM_TOPIC_SUBSCRIPTION_ID } else { $env:AZURE_SUBSCRIPTION_ID }
$subscriptionName = 'acr-deploy-image-pushed'
if ($env:EVENTGRID_SYSTEM_TOPIC_CREATED -eq 'false') {
    # A topic the registry already had may serve other environments too: one subscription each.
    $subscriptionName = "acr-deploy-$($env:AZURE_FUNCTION_APP_NAME)"
}

# The host indexes the functions a little after the package lands: wait for the trigger, bounded.
# When it does not come, say what the host did index and what it reported, instead of waiting on.
$waitS = if ($env:ACR_DEPLOY_POSTDEPLOY_WAIT_S) { [int]$env:ACR_DEPLOY_POSTDEPLOY_WAIT_S } else { 300 }
$pollS = if ($env:ACR_DEPLOY_POSTDEPLOY_POLL_S) { [int]$env:ACR_DEPLOY_POSTDEPLOY_POLL_S } else { 10 }
Write-Host "Waiting (up to $waitS s) for function $($env:EVENTGRID_FUNCTION_NAME) on $($env:AZURE_FUNCTION_APP_NAME)..."
$waited = 0
while ($true) {
    az functionapp function show --resource-group $env:AZURE_RESOURCE_GROUP `
        --name $env:AZURE_FUNCTION_APP_NAME --function-name $env:EVENTGRID_FUNCTION_NAME `
        --output none 2>$null
    if ($LASTEXITCODE -eq 0) { break }
    if ($waited -ge $waitS) {
        Write-Host "Function $($env:EVENTGRID_FUNCTION_NAME) did not appear on $($env:AZURE_FUNCTION_APP_NAME) within $waitS s."
        $indexed = az functionapp function list --resource-group $env:AZURE_RESOURCE_GROUP `
            --name $env:AZURE_FUNCTION_APP_NAME --query '[].name' --output tsv 2>$null
        if ($indexed) {
            Write-Host 'Functions the host indexed:'
            $indexed | ForEach-Object { Write-Host "  $_" }
        } else {
            Write-Host 'The host indexed no function: the Python worker refused function_app.py (one refused function stops them all) or could not import it.'
        }
        $appId = "/subscriptions/$($env:AZURE_SUBSCRIPTION_ID)/resourceGroups/$($env:AZURE_RESOURCE_GROUP)/providers/Microsoft.Web/sites/$($env:AZURE_FUNCTION_APP_NAME)"
        $status = az rest --method get --url "$appId/hostruntime/admin/host/status?api-version=2022-03-01" `
            --query '{state: state, errors: errors}' --output json 2>$null
        if ($LASTEXITCODE -eq 0) { Write-Host "Host status: $status" }
        Write-Host "The worker's own message is in Application Insights (traces, 'Worker failed to index functions'); the dev host reproduces its checks: python -m devtools.host (docs/devhost.md)."
        Write-Error "Fix it and run 'azd deploy' again (this hook runs again)."
        exit 1
    }
    Start-Sleep -Seconds $pollS
    $waited += [Math]::Max($pollS, 1)
}

Write-Host "Creating the Event Grid subscription $subscriptionName (ImagePushed -> $($env:EVENTGRID_FUNCTION_NAME)) on topic $($env:EVENTGRID_SYSTEM_TOPIC_NAME)..."
$target = @('--resource-group', $topicRg)
if ($topicSub) { $target += @('--subscription', $topicSub) }
if ($env:AZURE_SUBSCRIPTION_ID) { $target += @('--parameters', "appSubscriptionId=$($env:AZURE_SUBSCRIPTION_ID)") }
az deployment group create @target `
    --name acr-deploy-event-subscription `
    --template-file $template `
    --parameters `
        "systemTopicName=$($env:EVENTGRID_SYSTEM_TOPIC_NAME)" `
        "subscriptionName=$subscriptionName" `
        "functionAppName=$($env:AZURE_FUNCTION_APP_NAME)" `
        "appResourceGroup=$($env:AZURE_RESOURCE_GROUP)" `
        "functionName=$($env:EVENTGRID_FUNCTION_NAME)" `
        "storageAccountName=$($env:AZURE_STORAGE_ACCOUNT_NAME)" `
        "deadLetterContainerName=$($env:EVENTGRID_DEADLETTER_CONTAINER)" `
    --output none
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }

Write-Host "Event Grid subscription ready: pushes to the registry now reach $($env:AZURE_FUNCTION_APP_NAME)."
