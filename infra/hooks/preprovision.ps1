# azd preprovision hook (PowerShell), run from the project root: stop before anything is created
# 1. when the rules file the app will be told to load (ACR_DEPLOY_RULES_FILE, default rules.yaml,
#    deployed with the code) is missing: the function would refuse to start. Set it to "" for the
#    zero-config convention instead;
# 2. when the existing container registry is not configured, instead of failing halfway through
#    the deployment with an ARM error. Set either ACR_REGISTRY_RESOURCE_ID, or ACR_REGISTRY_NAME
#    and ACR_REGISTRY_RESOURCE_GROUP.
# Then (step 3) it looks for the registry's existing Event Grid system topic with the Azure CLI.
$ErrorActionPreference = 'Stop'

$rulesFile = if ($null -eq $env:ACR_DEPLOY_RULES_FILE) { 'rules.yaml' } else { $env:ACR_DEPLOY_RULES_FILE }
if ($rulesFile -and -not [System.IO.Path]::IsPathRooted($rulesFile) -and -not (Test-Path -PathType Leaf $rulesFile)) {
    Write-Host "The function app will load the rules file '$rulesFile' (ACR_DEPLOY_RULES_FILE), which is not in the project."
    Write-Host "Create it (e.g. copy rules.example.yaml $rulesFile), or use the zero-config convention: azd env set ACR_DEPLOY_RULES_FILE `"`""
    exit 1
}

$registryId = $env:ACR_REGISTRY_RESOURCE_ID
if ($registryId) {
    if ($registryId -notmatch '^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ContainerRegistry/registries/[^/]+$') {
        Write-Error "ACR_REGISTRY_RESOURCE_ID is not a container registry resource id: $registryId (expected /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>)"
        exit 1
    }
} elseif (-not ($env:ACR_REGISTRY_NAME -and $env:ACR_REGISTRY_RESOURCE_GROUP)) {
    Write-Host @'
acr-deploy needs an existing Azure Container Registry (in the same subscription). Set one of:
  azd env set ACR_REGISTRY_RESOURCE_ID /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>
or
  azd env set ACR_REGISTRY_NAME <name>
  azd env set ACR_REGISTRY_RESOURCE_GROUP <resource group>
then run `azd up` again. See docs/deploy.md.
'@
    exit 1
}

# 3. Event Grid allows one system topic per source: find the registry's existing one and hand it to
#    the Bicep (EVENTGRID_EXISTING_SYSTEM_TOPIC_*), which then uses it as it is; tear-down (predown
#    hook) never deletes a topic this environment did not create.
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Write-Host "note: the Azure CLI (az) is not installed, so the registry's existing Event Grid system topic (if any) cannot be looked up; provisioning creates one."
    exit 0
}
if (-not $registryId) {
    $registryId = az acr show --name $env:ACR_REGISTRY_NAME --resource-group $env:ACR_REGISTRY_RESOURCE_GROUP --query id --output tsv
    if ($LASTEXITCODE -ne 0 -or -not $registryId) {
        Write-Error "Registry $($env:ACR_REGISTRY_NAME) not found in resource group $($env:ACR_REGISTRY_RESOURCE_GROUP) (az acr show failed; is az logged in to the right subscription?)."
        exit 1
    }
}
$registrySub = $registryId.Split('/')[2]
$topics = az eventgrid system-topic list --subscription $registrySub --output json | ConvertFrom-Json
if ($LASTEXITCODE -ne 0) {
    Write-Error "Could not list the Event Grid system topics of subscription $registrySub (az eventgrid system-topic list failed)."
    exit 1
}
$found = $topics | Where-Object { $_.source -and $_.source.ToLowerInvariant() -eq $registryId.ToLowerInvariant() } | Select-Object -First 1

$topicName = ''; $topicRg = ''; $topicPrincipal = ''
if ($found) {
    $envTag = if ($found.tags) { $found.tags.'azd-env-name' } else { $null }
    if ($env:AZURE_ENV_NAME -and $envTag -eq $env:AZURE_ENV_NAME) {
        Write-Host "The registry's system topic $($found.name) was created by this environment; provisioning keeps managing it."
    } else {
        $principal = if ($found.identity) { $found.identity.principalId } else { $null }
        if (-not $principal) {
            Write-Host "The registry already has the Event Grid system topic $($found.name) (resource group $($found.resourceGroup)), which has no system-assigned identity."
            Write-Host 'acr-deploy dead-letters undeliverable events with that identity. Enable it, then run azd up again:'
            Write-Host "  az eventgrid system-topic update --name $($found.name) --resource-group $($found.resourceGroup) --subscription $registrySub --identity systemassigned"
            exit 1
        }
        Write-Host "The registry already has the Event Grid system topic $($found.name) (resource group $($found.resourceGroup)): it is used as it is, and never deleted by azd down."
        $topicName = $found.name; $topicRg = $found.resourceGroup; $topicPrincipal = $principal
    }
}
# Always written, so a topic found once and deleted since is not remembered.
azd env set EVENTGRID_EXISTING_SYSTEM_TOPIC_NAME "$topicName"
azd env set EVENTGRID_EXISTING_SYSTEM_TOPIC_RESOURCE_GROUP "$topicRg"
azd env set EVENTGRID_EXISTING_SYSTEM_TOPIC_PRINCIPAL_ID "$topicPrincipal"
exit 0
