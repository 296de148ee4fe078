#!/bin/sh
# azd preprovision hook (POSIX sh), run from the project root: stop before anything is created
# 1. when the rules file the app will be told to load (ACR_DEPLOY_RULES_FILE, default rules.yaml,
#    deployed with the code) is missing: the function would refuse to start. Set it to "" for the
#    zero-config convention instead;
# 2. when the existing container registry is not configured, instead of failing halfway through
#    the deployment with an ARM error. Set either ACR_REGISTRY_RESOURCE_ID, or ACR_REGISTRY_NAME
#    and ACR_REGISTRY_RESOURCE_GROUP:
#   azd env set ACR_REGISTRY_RESOURCE_ID /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>
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

if [ -n "${ACR_REGISTRY_RESOURCE_ID:-}" ]; then
  if printf '%s' "$ACR_REGISTRY_RESOURCE_ID" | grep -Eiq '^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ContainerRegistry/registries/[^/]+$'; then
    exit 0
  fi
  echo "ACR_REGISTRY_RESOURCE_ID is not a container registry resource id: $ACR_REGISTRY_RESOURCE_ID" >&2
  echo "Expected /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>" >&2
  exit 1
fi

if [ -n "${ACR_REGISTRY_NAME:-}" ] && [ -n "${ACR_REGISTRY_RESOURCE_GROUP:-}" ]; then
  exit 0
fi

cat >&2 <<'MSG'
acr-deploy needs an existing Azure Container Registry (in the same subscription). Set one of:
  azd env set ACR_REGISTRY_RESOURCE_ID /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>
or
  azd env set ACR_REGISTRY_NAME <name>
  azd env set ACR_REGISTRY_RESOURCE_GROUP <resource group>
then run `azd up` again. See docs/deploy.md.
MSG
exit 1
