#!/bin/sh
# azd postdeploy hook (POSIX sh): subscribe the function's Event Grid trigger to the registry's
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

# Defaults for environments provisioned before these outputs existed: the topic was ours, in the
# environment's resource group.
topic_rg=${EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP:-$AZURE_RESOURCE_GROUP}
topic_sub=${EVENTGRID_SYSTEM_TOPIC_SUBSCRIPTION_ID:-${AZURE_SUBSCRIPTION_ID:-}}
subscription_name=acr-deploy-image-pushed
if [ "${EVENTGRID_SYSTEM_TOPIC_CREATED:-true}" = "false" ]; then
  # A topic the registry already had may serve other environments too: one subscription each.
  subscription_name="acr-deploy-$AZURE_FUNCTION_APP_NAME"
fi

# The host indexes the functions a little after the package lands: wait for the trigger, bounded.
# When it does not come, say what the host did index and what it reported, instead of waiting on.
wait_s=${ACR_DEPLOY_POSTDEPLOY_WAIT_S:-300}
poll_s=${ACR_DEPLOY_POSTDEPLOY_POLL_S:-10}
echo "Waiting (up to ${wait_s} s) for function $EVENTGRID_FUNCTION_NAME on $AZURE_FUNCTION_APP_NAME..."
waited=0
until az functionapp function show --resource-group "$AZURE_RESOURCE_GROUP" \
        --name "$AZURE_FUNCTION_APP_NAME" --function-name "$EVENTGRID_FUNCTION_NAME" \
        --output none >/dev/null 2>&1; do
  if [ "$waited" -ge "$wait_s" ]; then
    echo "Function $EVENTGRID_FUNCTION_NAME did not appear on $AZURE_FUNCTION_APP_NAME within ${wait_s} s." >&2
    indexed=$(az functionapp function list --resource-group "$AZURE_RESOURCE_GROUP" \
      --name "$AZURE_FUNCTION_APP_NAME" --query '[].name' --output tsv 2>/dev/null || true)
    if [ -n "$indexed" ]; then
      echo "Functions the host indexed:" >&2
      printf '%s\n' "$indexed" | sed 's/^/  /' >&2
    else
      echo "The host indexed no function: the Python worker refused function_app.py (one refused function stops them all) or could not import it." >&2
    fi
    app_id="/subscriptions/${AZURE_SUBSCRIPTION_ID:-}/resourceGroups/$AZURE_RESOURCE_GROUP/providers/Microsoft.Web/sites/$AZURE_FUNCTION_APP_NAME"
    if status=$(az rest --method get --url "$app_id/hostruntime/admin/host/status?api-version=2022-03-01" \
        --query '{state: state, errors: errors}' --output json 2>/dev/null); then
      echo "Host status: $status" >&2
    fi
    echo "The worker's own message is in Application Insights (traces, 'Worker failed to index functions'); the dev host reproduces its checks: python -m devtools.host (docs/devhost.md)." >&2
    echo "Fix it and run 'azd deploy' again (this hook runs again)." >&2
    exit 1
  fi
  sleep "$poll_s"
  waited=$((waited + poll_s))
  [ "$poll_s" -gt 0 ] || waited=$((waited + 1))
done

echo "Creating the Event Grid subscription $subscription_name (ImagePushed -> $EVENTGRID_FUNCTION_NAME) on topic $EVENTGRID_SYSTEM_TOPIC_NAME..."
set -- --resource-group "$topic_rg"
if [ -n "$topic_sub" ]; then
  set -- "$@" --subscription "$topic_sub"
fi
if [ -n "${AZURE_SUBSCRIPTION_ID:-}" ]; then  # the app's subscription, when the topic is elsewhere
  set -- "$@" --parameters appSubscriptionId="$AZURE_SUBSCRIPTION_ID"
fi
az deployment group create "$@" \
  --name acr-deploy-event-subscription \
  --template-file "$template" \
  --parameters \
    systemTopicName="$EVENTGRID_SYSTEM_TOPIC_NAME" \
    subscriptionName="$subscription_name" \
    functionAppName="$AZURE_FUNCTION_APP_NAME" \
    appResourceGroup="$AZURE_RESOURCE_GROUP" \
    functionName="$EVENTGRID_FUNCTION_NAME" \
    storageAccountName="$AZURE_STORAGE_ACCOUNT_NAME" \
    deadLetterContainerName="$EVENTGRID_DEADLETTER_CONTAINER" \
  --output none

echo "Event Grid subscription ready: pushes to the registry now reach $AZURE_FUNCTION_APP_NAME."
