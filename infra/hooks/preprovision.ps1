# azd preprovision hook (PowerShell), run from the project root: stop before anything is created
# 1. when the rules file the app will be told to load (ACR_DEPLOY_RULES_FILE, default rules.yaml,
#    deployed with the code) is missing: the function would refuse to start. Set it to "" for the
#    zero-config convention instead;
# 2. when the existing container registry is not configured, instead of failing halfway through
#    the deployment with an ARM error. Set either ACR_REGISTRY_RESOURCE_ID, or ACR_REGISTRY_NAME
#    and ACR_REGISTRY_RESOURCE_GROUP.
$ErrorActionPreference = 'Stop'

$rulesFile = if ($null -eq $env:ACR_DEPLOY_RULES_FILE) { 'rules.yaml' } else { $env:ACR_DEPLOY_RULES_FILE }
if ($rulesFile -and -not [System.IO.Path]::IsPathRooted($rulesFile) -and -not (Test-Path -PathType Leaf $rulesFile)) {
    Write-Host "The function app will load the rules file '$rulesFile' (ACR_DEPLOY_RULES_FILE), which is not in the project."
    Write-Host "Create it (e.g. copy rules.example.yaml $rulesFile), or use the zero-config convention: azd env set ACR_DEPLOY_RULES_FILE `"`""
    exit 1
}

$registryId = $env:ACR_REGISTRY_RESOURCE_ID
if ($registryId) {
    if ($registryId -match '^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ContainerRegistry/registries/[^/]+$') {
        exit 0
    }
    Write-Error "ACR_REGISTRY_RESOURCE_ID is not a container registry resource id: $registryId (expected /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>)"
    exit 1
}

if ($env:ACR_REGISTRY_NAME -and $env:ACR_REGISTRY_RESOURCE_GROUP) {
    exit 0
}

Write-Host @'
acr-deploy needs an existing Azure Container Registry (in the same subscription). Set one of:
  azd env set ACR_REGISTRY_RESOURCE_ID /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>
or
  azd env set ACR_REGISTRY_NAME <name>
  azd env set ACR_REGISTRY_RESOURCE_GROUP <resource group>
then run `azd up` again. See docs/deploy.md.
'@
exit 1
