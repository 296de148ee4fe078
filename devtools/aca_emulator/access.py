"""Who may reach an app from outside its environment: IP restrictions and built-in authentication.

- ``ingress.ipSecurityRestrictions``: every rule has the same action (the service refuses a mix). With Allow
  rules, only callers inside one of the ranges get through; with Deny rules, callers inside one are refused.
  Others get 403 from the environment's edge (learn.microsoft.com container-apps "ip-restrictions").
- Built-in authentication (the ``authConfigs/current`` sub-resource): a request without credentials is
  redirected to the login page (302, the default ``RedirectToLoginPage``) or gets 401 (``Return401``)
  (learn.microsoft.com container-apps "authentication"). The emulator accepts any bearer token or the
  ``AppServiceAuthSession`` cookie as credentials; it does not validate tokens.
"""
from __future__ import annotations

import ipaddress


def ip_allowed(rules: list | None, client_ip: str) -> bool:
    rules = [r for r in rules or [] if isinstance(r, dict) and r.get("ipAddressRange")]
    if not rules:
        return True
    try:
        ip = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    inside = any(ip in ipaddress.ip_network(str(r["ipAddressRange"]), strict=False) for r in rules)
    allow = str(rules[0].get("action", "Allow")).lower() == "allow"
    return inside if allow else not inside


def check_rules(rules: list | None) -> str | None:
    """Why a list of IP rules is invalid (for a 400), or None."""
    actions = set()
    for rule in rules or []:
        if not isinstance(rule, dict) or not rule.get("name") or not rule.get("ipAddressRange"):
            return "every ipSecurityRestrictions rule needs 'name', 'ipAddressRange' and 'action'"
        try:
            ipaddress.ip_network(str(rule["ipAddressRange"]), strict=False)
        except ValueError:
            return f"ipAddressRange {rule['ipAddressRange']!r} is not an IP address or CIDR range"
        actions.add(str(rule.get("action", "")).lower())
    if not actions <= {"allow", "deny"}:
        return "action must be Allow or Deny"
    if len(actions) > 1:
        return "all ipSecurityRestrictions rules must have the same action (all Allow or all Deny)"
    return None


def has_credentials(headers: dict) -> bool:
    auth = headers.get("authorization", "")
    return (auth.lower().startswith("bearer ") and bool(auth[7:].strip())) or \
        "appserviceauthsession=" in headers.get("cookie", "").lower()


def auth_config_view(app_id: str, auth: dict | None) -> dict:
    """The ``authConfigs/current`` resource as the ARM API shows it."""
    auth = auth or {}
    return {"id": f"{app_id}/authConfigs/current", "name": "current", "type": "Microsoft.App/containerApps/authConfigs",
            "properties": {"platform": {"enabled": bool(auth.get("enabled"))},
                           "globalValidation": {"unauthenticatedClientAction":
                                                auth.get("unauthenticatedClientAction") or "RedirectToLoginPage"}}}
