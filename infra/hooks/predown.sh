#!/bin/sh
# azd predown hook (POSIX sh): before `azd down` deletes the environment's resource group, remove
# what this environment added to resources it does not own. When the registry already had an
# Event Grid system topic (EVENTGRID_SYSTEM_TOPIC_CREATED=false, found by the preprovision hook),
# the topic is left alone and only this environment's event subscription on it is deleted. A topic
# this environment created lives in its resource group and goes with it.
set -eu

if [ -z "${AZURE_FUNCTION_APP_NAME:-}" ] && command -v azd >/dev/null 2>&1; then
  eval "$(azd env get-values | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=\(.*\)$/export \1=\2/p')"
fi

if [ "${EVENTGRID_SYSTEM_TOPIC_CREATED:-true}" != "false" ]; then
  exit 0  # the topic is ours: deleted with the resource group, by azd down itself
fi
for name in EVENTGRID_SYSTEM_TOPIC_NAME EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then
    echo "$name is not set: cannot tell which event subscription to remove from the registry's system topic; nothing removed." >&2
    exit 0
  fi
done
if ! command -v az >/dev/null 2>&1; then
  echo "The Azure CLI (az) is not installed: remove the event subscription acr-deploy-$AZURE_FUNCTION_APP_NAME from the system topic $EVENTGRID_SYSTEM_TOPIC_NAME yourself." >&2
  exit 0
fi

set -- --resource-group "$EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP"
if [ -n "${EVENTGRID_SYSTEM_TOPIC_SUBSCRIPTION_ID:-}" ]; then
  set -- "$@" --subscription "$EVENTGRID_SYSTEM_TOPIC_SUBSCRIPTION_ID"
fi
echo "Removing event subscription acr-deploy-$AZURE_FUNCTION_APP_NAME from the system topic $EVENTGRID_SYSTEM_TOPIC_NAME (the topic stays: this environment did not create it)..."
az eventgrid system-topic event-subscription delete "$@" \
  --system-topic-name "$EVENTGRID_SYSTEM_TOPIC_NAME" \
  --name "acr-deploy-$AZURE_FUNCTION_APP_NAME" --yes
