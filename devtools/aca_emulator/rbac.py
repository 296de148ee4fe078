"""RBAC mode: Azure Resource Manager's authorization check in front of every ARM call.

Off unless the emulator is started with role assignments. Each assignment gives a principal (or ``*``, any
caller) a set of actions (with ``*`` wildcards, minus ``notActions``) at a scope (a subscription, a resource
group or a resource) and everything below it. A call whose action is not granted at its scope answers ARM's
``403 AuthorizationFailed``. Operation-status URLs sit at *subscription* scope
(``/subscriptions/{s}/providers/Microsoft.App/locations/{l}/containerappOperationStatuses/{id}``), so a role
assigned on resource groups does not cover them (microsoft/azure-container-apps#215). Creating an app also
needs ``Microsoft.App/managedEnvironments/join/action`` on its environment (ARM's linked access check).

The caller is the bearer token's ``oid`` claim when the token is a JWT, otherwise the token itself (the
pipeline's local credential sends a fixed token). The token is never logged or echoed.
"""
from __future__ import annotations

import base64
import fnmatch
import json
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .errors import ArmError

_VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
# Built-in roles an assignment may name (``builtin_role``), with their actions as Azure defines them.
# Monitoring Reader: canary analysis reads ``Microsoft.Insights/metrics`` on the target resource groups
# (infra/app/containerapps-role-assignment.bicep); the custom Container Apps role does not cover it.
BUILTIN_ROLES = {
    "Monitoring Reader": ("*/read", "Microsoft.OperationalInsights/workspaces/search/action", "Microsoft.Support/*"),
}


@dataclass(frozen=True)
class RoleAssignment:
    principal: str  # principal (object) id, or "*" for any caller
    scope: str  # /subscriptions/{s}[/resourceGroups/{rg}[/providers/...]]
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()

    def grants(self, principal: str, action: str, scope: str) -> bool:
        return (self.principal in ("*", principal) and _under(scope, self.scope)
                and any(_matches(action, a) for a in self.actions)
                and not any(_matches(action, a) for a in self.not_actions))


def _matches(action: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def _under(scope: str, parent: str) -> bool:
    scope, parent = scope.rstrip("/").lower(), parent.rstrip("/").lower()
    return scope == parent or scope.startswith(parent + "/")


def action_and_scope(method: str, path: str) -> tuple[str, str]:
    """The ARM action a request needs and the scope it is checked at, from its path."""
    path = urllib.parse.urlsplit(path).path.rstrip("/")
    if "/providers/" not in path.lower():
        return f"Microsoft.Resources/subscriptions/resourceGroups/{_VERBS.get(method, 'read')}", path
    idx = path.lower().rindex("/providers/")
    head, tail = path[:idx], path[idx + len("/providers/"):].split("/")
    namespace, rest = tail[0], tail[1:]
    types = rest[0::2]
    if len(rest) % 2 == 1 and method == "POST":  # .../{type}/{name}/{action}
        return "/".join([namespace, *types[:-1], types[-1], "action"]), "/".join([head, "providers", namespace,
                                                                                *rest[:-1]])
    # A resource is checked at its own id; a collection (odd number of segments) at its parent.
    owner = rest if len(rest) % 2 == 0 else rest[:-1]
    scope = "/".join([head, "providers", namespace, *owner]) if owner else head
    return "/".join([namespace, *types, _VERBS.get(method, "read")]), scope


def principal_of(authorization: str) -> str:
    token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else authorization
    parts = token.split(".")
    if len(parts) == 3:
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            return str(claims.get("oid") or claims.get("sub") or token)
        except (ValueError, UnicodeDecodeError):
            pass
    return token


class Rbac:
    def __init__(self, assignments: list[RoleAssignment]):
        self.assignments = list(assignments)

    def check(self, authorization: str, method: str, path: str, body: bytes = b"") -> None:
        principal = principal_of(authorization)
        action, scope = action_and_scope(method, path)
        self._require(principal, action, scope)
        if method == "PUT" and action.lower() == "microsoft.app/containerapps/write":
            env = _environment_of(body)
            if env:
                self._require(principal, "Microsoft.App/managedEnvironments/join/action", env)

    def _require(self, principal: str, action: str, scope: str) -> None:
        if not any(a.grants(principal, action, scope) for a in self.assignments):
            shown = principal if re.fullmatch(r"[0-9a-fA-F-]{36}", principal) else "the caller"
            raise ArmError(403, "AuthorizationFailed",
                           f"The client '{shown}' with object id '{shown}' does not have authorization to "
                           f"perform action '{action}' over scope '{scope}' or the scope is invalid. If access "
                           "was recently granted, please refresh your credentials.")


def _environment_of(body: bytes) -> str | None:
    try:
        props = (json.loads(body or b"{}") or {}).get("properties") or {}
    except (ValueError, AttributeError):
        return None
    return props.get("environmentId") or props.get("managedEnvironmentId")


def actions_from_bicep(path: str | Path) -> list[str]:
    """The ``actions`` of a custom role definition in Bicep (``var actions = [ 'Microsoft.App/...' ]``)."""
    text = re.sub(r"//[^\n]*", "", Path(path).read_text())  # comments may hold brackets and quotes
    match = re.search(r"var\s+actions\s*=\s*\[(.*?)\]", text, re.DOTALL)
    if not match:
        raise ValueError(f"{path}: no 'var actions = [...]' block")
    return re.findall(r"'([^']+)'", match.group(1))


def load_assignments(source) -> list[RoleAssignment]:
    """Assignments from a list of dicts (or a YAML/JSON file holding one): ``principal``, ``scope``,
    ``actions``, ``role_bicep`` (a custom role's Bicep file) or ``builtin_role`` (a name in BUILTIN_ROLES),
    optional ``notActions``."""
    if isinstance(source, (str, Path)):
        import yaml
        source = yaml.safe_load(Path(source).read_text())
    out = []
    for item in source or []:
        if isinstance(item, RoleAssignment):
            out.append(item)
            continue
        actions = list(item.get("actions") or [])
        if item.get("role_bicep"):
            actions += actions_from_bicep(item["role_bicep"])
        if item.get("builtin_role"):
            if item["builtin_role"] not in BUILTIN_ROLES:
                raise ValueError(f"unknown built-in role {item['builtin_role']!r} (known: {sorted(BUILTIN_ROLES)})")
            actions += BUILTIN_ROLES[item["builtin_role"]]
        if not item.get("scope") or not actions:
            raise ValueError(f"role assignment needs 'scope' and 'actions' or 'role_bicep': {item!r}")
        out.append(RoleAssignment(str(item.get("principal") or "*"), str(item["scope"]), tuple(actions),
                                  tuple(item.get("notActions") or ())))
    return out
