"""What the service does to a container app's template and secrets beyond storing them.

- Containers without ``resources`` get the service's default (0.5 vCPU, 1 GiB), and GET returns it, so a
  GET -> PUT round trip compares equal (the spec: a revision's template carries "the defaults if user did not
  provide them").
- Ingress ``transport`` defaults to ``auto``; a custom scale rule of type ``http`` is stored as an ``http`` rule.
- Env entries whose value is empty come back *without* ``value`` (the service omits empty strings). An entry
  sent with neither ``value`` nor ``secretRef`` is accepted, and the variable is then *unset* in the container,
  not empty (microsoft/azure-container-apps#149): a client that writes back what it read loses its empty
  variables unless it puts ``value: ""`` back, as the az CLI does.
- A ``secretRef`` must name a secret of the app: ``ContainerAppSecretRefNotFound`` (the service's code and
  wording, seen in public issues).
- Secret values are write-only: GET returns names only, ``listSecrets`` returns values. A write that sends a
  secret back without its value (as read from GET) keeps the stored value.
"""
from __future__ import annotations

import copy

from .errors import bad_request

DEFAULT_RESOURCES = {"cpu": 0.5, "memory": "1Gi"}


def _containers(template: dict) -> list[dict]:
    return [c for key in ("initContainers", "containers") for c in (template.get(key) or [])
            if isinstance(c, dict)]


def normalise_template(template: dict) -> dict:
    """The template as the service stores it: server-side defaults added."""
    out = copy.deepcopy(template)
    for container in out.get("containers") or []:
        if isinstance(container, dict) and not container.get("resources"):
            container["resources"] = dict(DEFAULT_RESOURCES)
    for rule in (out.get("scale") or {}).get("rules") or []:
        custom = rule.get("custom") if isinstance(rule, dict) else None
        if isinstance(custom, dict) and str(custom.get("type", "")).lower() == "http":
            # A custom rule of type http comes back as an http rule (ContainerApps_CreateOrUpdate example).
            del rule["custom"]
            rule["http"] = {k: v for k, v in custom.items() if k != "type"}
    return out


def normalise_configuration(configuration: dict | None) -> None:
    """Server-side defaults of the configuration, in place: ingress transport ``auto`` (spec default)."""
    ingress = (configuration or {}).get("ingress")
    if isinstance(ingress, dict):
        ingress.setdefault("transport", "auto")


def view_template(template: dict) -> dict:
    """The template as GET shows it: empty env values omitted."""
    out = copy.deepcopy(template)
    for container in _containers(out):
        for entry in container.get("env") or []:
            if isinstance(entry, dict) and entry.get("value") == "":
                del entry["value"]
    return out


def check_env_entries(template: dict, secrets: list | None) -> None:
    names = {s.get("name") for s in secrets or [] if isinstance(s, dict)}
    for container in _containers(template):
        for entry in container.get("env") or []:
            if not isinstance(entry, dict) or not entry.get("name"):
                raise bad_request("ContainerAppInvalidTemplate", "Every env entry needs a 'name'.")
            if entry.get("secretRef") and entry["secretRef"] not in names:
                raise bad_request(
                    "ContainerAppSecretRefNotFound",
                    f"SecretRef '{entry['secretRef']}' defined for container '{container.get('name')}' not found.")


def container_env(template: dict) -> dict[str, str]:
    """The plain env variables a revision's first container runs with: entries with a value (empty
    included); secret references are left out, and entries without a value are unset."""
    containers = template.get("containers") or [{}]
    return {e["name"]: e["value"] for e in containers[0].get("env") or []
            if isinstance(e, dict) and e.get("name") and isinstance(e.get("value"), str) and not e.get("secretRef")}


def hide_secrets(props: dict) -> None:
    for secret in (props.get("configuration") or {}).get("secrets") or []:
        if isinstance(secret, dict):
            secret.pop("value", None)


def restore_secret_values(props: dict, stored_props: dict) -> None:
    """Secrets sent back without a value (as GET shows them) keep the stored value; new ones need one."""
    stored = {s.get("name"): s for s in (stored_props.get("configuration") or {}).get("secrets") or []
              if isinstance(s, dict)}
    for secret in (props.get("configuration") or {}).get("secrets") or []:
        if not isinstance(secret, dict) or not secret.get("name"):
            raise bad_request("ContainerAppSecretInvalid", "Every secret needs a 'name'.")
        if secret.get("value") is None and not secret.get("keyVaultUrl"):
            old = stored.get(secret["name"]) or {}
            if old.get("value") is None and not old.get("keyVaultUrl"):
                raise bad_request("ContainerAppSecretInvalid",
                                  f"Secret '{secret['name']}' needs a value or a keyVaultUrl.")
            secret.update({k: old[k] for k in ("value", "keyVaultUrl", "identity") if old.get(k) is not None})
