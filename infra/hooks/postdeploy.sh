#!/bin/sh
# azd postdeploy hook (POSIX sh): subscribe the function's Event Grid trigger to the registry's
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
set -eu

script_dir=$(cd "$(dirname "$0")" && pwd)
template="$script_dir/../app/event-subscription.bicep"

# azd passes the environment's values to hooks; older azd versions do not, so load them if missing.
if [ -z "${AZURE_FUNCTION_APP_NAME:-}" ] && command -v azd >/dev/null 2>&1; then
  eval "$(azd env get-values | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=\(.*\)$/export \1=\2/p')"
fi

if ! command -v az >/dev/null 2>&1; then
  echo "The Azure CLI (az) is required to create the Event Grid subscription; see docs/deploy.md." >&2
  exit 1
fi

for name in AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME EVENTGRID_SYSTEM_TOPIC_NAME \
            EVENTGRID_FUNCTION_NAME AZURE_STORAGE_ACCOUNT_NAME EVENTGRID_DEADLETTER_CONTAINER; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then
    echo "$name is not set: run 'azd provision' first." >&2
    exit 1
  fi
done

if [ -n "${AZURE_SUBSCRIPTION_ID:-}" ]; then
  az account set --subscription "$AZURE_SUBSCRIPTION_ID"
fi

# Flex Consumption indexes the functions a little after the package lands: wait for the trigger.
echo "Waiting for function $EVENTGRID_FUNCTION_NAME on $AZURE_FUNCTION_APP_NAME..."
attempt=0
until az functionapp function show --resource-group "$AZURE_RESOURCE_GROUP" \
        --name "$AZURE_FUNCTION_APP_NAME" --function-name "$EVENTGRID_FUNCTION_NAME" \
        --output none >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 30 ]; then
    echo "Function $EVENTGRID_FUNCTION_NAME did not appear within 5 minutes; re-run 'azd deploy' (this hook runs again)." >&2
    exit 1
  fi
  sleep 10
done

echo "Creating the Event Grid subscription (ImagePushed -> $EVENTGRID_FUNCTION_NAME)..."
az deployment group create \
  --resource-group "$AZURE_RESOURCE_GROUP" \
  --name acr-deploy-event-subscription \
  --template-file "$template" \
  --parameters \
    systemTopicName="$EVENTGRID_SYSTEM_TOPIC_NAME" \
    functionAppName="$AZURE_FUNCTION_APP_NAME" \
    functionName="$EVENTGRID_FUNCTION_NAME" \
    storageAccountName="$AZURE_STORAGE_ACCOUNT_NAME" \
    deadLetterContainerName="$EVENTGRID_DEADLETTER_CONTAINER" \
  --output none

echo "Event Grid subscription ready: pushes to the registry now reach $AZURE_FUNCTION_APP_NAME."
