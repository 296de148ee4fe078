# azd postdeploy hook (PowerShell): subscribe the function's Event Grid trigger to the registry's
# ImagePushed events.
#
# Why here and not in `azd provision`: an Event Grid subscription with an AzureFunction endpoint
# (resource id <functionAppId>/functions/on_image_pushed) is validated when it is created, and that
# function only exists after `azd deploy` has published the code. So provisioning creates the
# system topic (infra/app/eventgrid.bicep) and this hook, which azd runs after every deploy,
# deploys infra/app/event-subscription.bicep into the environment's resource group. Re-running it
# is harmless: the deployment is idempotent.
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

# Flex Consumption indexes the functions a little after the package lands: wait for the trigger.
Write-Host "Waiting for function $($env:EVENTGRID_FUNCTION_NAME) on $($env:AZURE_FUNCTION_APP_NAME)..."
$attempt = 0
while ($true) {
    az functionapp function show --resource-group $env:AZURE_RESOURCE_GROUP `
        --name $env:AZURE_FUNCTION_APP_NAME --function-name $env:EVENTGRID_FUNCTION_NAME `
        --output none 2>$null
    if ($LASTEXITCODE -eq 0) { break }
    $attempt++
    if ($attempt -ge 30) {
        Write-Error "Function $($env:EVENTGRID_FUNCTION_NAME) did not appear within 5 minutes; re-run 'azd deploy' (this hook runs again)."
        exit 1
    }
    Start-Sleep -Seconds 10
}

Write-Host "Creating the Event Grid subscription (ImagePushed -> $($env:EVENTGRID_FUNCTION_NAME))..."
az deployment group create `
    --resource-group $env:AZURE_RESOURCE_GROUP `
    --name acr-deploy-event-subscription `
    --template-file $template `
    --parameters `
        "systemTopicName=$($env:EVENTGRID_SYSTEM_TOPIC_NAME)" `
        "functionAppName=$($env:AZURE_FUNCTION_APP_NAME)" `
        "functionName=$($env:EVENTGRID_FUNCTION_NAME)" `
        "storageAccountName=$($env:AZURE_STORAGE_ACCOUNT_NAME)" `
        "deadLetterContainerName=$($env:EVENTGRID_DEADLETTER_CONTAINER)" `
    --output none
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }

Write-Host "Event Grid subscription ready: pushes to the registry now reach $($env:AZURE_FUNCTION_APP_NAME)."
