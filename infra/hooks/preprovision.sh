#!/bin/sh
# azd preprovision hook (POSIX sh), run from the project root: stop before anything is created
# 1. when the rules file the app will be told to load (ACR_DEPLOY_RULES_FILE, default rules.yaml,
#    deployed with the code) is missing: the function would refuse to start. Set it to "" for the
#    zero-config convention instead;
# 2. when the existing container registry is not configured, instead of failing halfway through
#    the deployment with an ARM error. Set either ACR_REGISTRY_RESOURCE_ID, or ACR_REGISTRY_NAME
#    and ACR_REGISTRY_RESOURCE_GROUP:
#   azd env set ACR_REGISTRY_RESOURCE_ID /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>
# Then (step 3) it looks for the registry's existing Event Grid system topic with the Azure CLI.
set -eu

rules_file=${ACR_DEPLOY_RULES_FILE-rules.yaml}
case "$rules_file" in
  "" | /*) ;;
  *)
    if [ ! -f "$rules_file" ]; then
      echo "The function app will load the rules file '$rules_file' (ACR_DEPLOY_RULES_FILE), which is not in the project." >&2
      echo "Create it (e.g. cp rules.example.yaml $rules_file), or use the zero-config convention: azd env set ACR_DEPLOY_RULES_FILE \"\"" >&2
      exit 1
    fi
    ;;
esac

registry_id=""
if [ -n "${ACR_REGISTRY_RESOURCE_ID:-}" ]; then
  if ! printf '%s' "$ACR_REGISTRY_RESOURCE_ID" | grep -Eiq '^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ContainerRegistry/registries/[^/]+$'; then
    echo "ACR_REGISTRY_RESOURCE_ID is not a container registry resource id: $ACR_REGISTRY_RESOURCE_ID" >&2
    echo "Expected /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>" >&2
    exit 1
  fi
  registry_id=$ACR_REGISTRY_RESOURCE_ID
elif [ -z "${ACR_REGISTRY_NAME:-}" ] || [ -z "${ACR_REGISTRY_RESOURCE_GROUP:-}" ]; then
  cat >&2 <<'MSG'
acr-deploy needs an existing Azure Container Registry (in the same subscription). Set one of:
  azd env set ACR_REGISTRY_RESOURCE_ID /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>
or
  azd env set ACR_REGISTRY_NAME <name>
  azd env set ACR_REGISTRY_RESOURCE_GROUP <resource group>
then run `azd up` again. See docs/deploy.md.
MSG
  exit 1
fi

# 3. Event Grid allows one system topic per source: a registry that already has one (an earlier
#    event subscription made it, or another azd environment watches it) would make provisioning
#    fail. Find it and hand it to the Bicep (EVENTGRID_EXISTING_SYSTEM_TOPIC_*), which then uses it
#    as it is; tear-down (predown hook) never deletes a topic this environment did not create.
if ! command -v az >/dev/null 2>&1; then
  echo "note: the Azure CLI (az) is not installed, so the registry's existing Event Grid system topic (if any) cannot be looked up; provisioning creates one." >&2
  exit 0
fi
if [ -z "$registry_id" ]; then
  if ! registry_id=$(az acr show --name "$ACR_REGISTRY_NAME" --resource-group "$ACR_REGISTRY_RESOURCE_GROUP" --query id --output tsv); then
    echo "Registry $ACR_REGISTRY_NAME not found in resource group $ACR_REGISTRY_RESOURCE_GROUP (az acr show failed; is az logged in to the right subscription?)." >&2
    exit 1
  fi
fi
registry_sub=$(printf '%s' "$registry_id" | cut -d/ -f3)
if ! topics=$(az eventgrid system-topic list --subscription "$registry_sub" \
      --query '[].[source, name, resourceGroup, identity.principalId, tags."azd-env-name"]' --output tsv); then
  echo "Could not list the Event Grid system topics of subscription $registry_sub (az eventgrid system-topic list failed)." >&2
  exit 1
fi
found=$(printf '%s\n' "$topics" | awk -F '\t' -v id="$registry_id" 'tolower($1) == tolower(id) { print; exit }')

topic_name="" topic_rg="" topic_principal=""
if [ -n "$found" ]; then
  name=$(printf '%s' "$found" | cut -f2)
  group=$(printf '%s' "$found" | cut -f3)
  principal=$(printf '%s' "$found" | cut -f4)
  env_tag=$(printf '%s' "$found" | cut -f5)
  if [ -n "${AZURE_ENV_NAME:-}" ] && [ "$env_tag" = "$AZURE_ENV_NAME" ]; then
    echo "The registry's system topic $name was created by this environment; provisioning keeps managing it."
  else
    if [ -z "$principal" ] || [ "$principal" = "None" ]; then
      echo "The registry already has the Event Grid system topic $name (resource group $group), which has no system-assigned identity." >&2
      echo "acr-deploy dead-letters undeliverable events with that identity. Enable it, then run azd up again:" >&2
      echo "  az eventgrid system-topic update --name $name --resource-group $group --subscription $registry_sub --identity systemassigned" >&2
      exit 1
    fi
    echo "The registry already has the Event Grid system topic $name (resource group $group): it is used as it is, and never deleted by azd down."
    topic_name=$name topic_rg=$group topic_principal=$principal
  fi
fi
# Always written, so a topic found once and deleted since is not remembered.
azd env set EVENTGRID_EXISTING_SYSTEM_TOPIC_NAME "$topic_name"
azd env set EVENTGRID_EXISTING_SYSTEM_TOPIC_RESOURCE_GROUP "$topic_rg"
azd env set EVENTGRID_EXISTING_SYSTEM_TOPIC_PRINCIPAL_ID "$topic_principal"
