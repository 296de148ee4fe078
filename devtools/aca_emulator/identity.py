"""Managed identities on apps and environments: the ids the service assigns, added to what the client sent.

The service answers ``identity.principalId``/``tenantId`` for a system-assigned identity and ``clientId``/
``principalId`` for each user-assigned one. The emulator derives them from the resource id, so they are stable
for the life of a resource and no secret is involved.
"""
from __future__ import annotations

import uuid

TENANT_ID = "11111111-1111-1111-1111-111111111111"  # the emulator's one tenant


def _stable_id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts).lower()))


def render_identity(resource: dict) -> None:
    """Fill in the read-only identity fields of a rendered resource (in place)."""
    ident = resource.get("identity")
    if not isinstance(ident, dict):
        return
    kind = str(ident.get("type") or "None").replace(" ", "").lower()
    rid = str(resource.get("id") or "")
    if "systemassigned" in kind:
        ident.update(principalId=_stable_id(rid, "system"), tenantId=TENANT_ID)
    users = ident.get("userAssignedIdentities")
    if isinstance(users, dict):
        for uid in list(users):
            users[uid] = {"clientId": _stable_id(uid, "client"), "principalId": _stable_id(uid, "principal")}


def clean_identity(body: dict) -> None:
    """Strip what the service computes from a request body's identity (a GET echoed back)."""
    ident = body.get("identity")
    if isinstance(ident, dict):
        ident.pop("principalId", None)
        ident.pop("tenantId", None)
        users = ident.get("userAssignedIdentities")
        if isinstance(users, dict):
            for uid in users:
                users[uid] = {}
