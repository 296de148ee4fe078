"""Which registries we take pushes from (pure).

An event names its registry twice: the Event Grid `topic` / CloudEvents `source` (the registry's ARM
resource id, set by Event Grid itself) and `data.request.host` (the login server the client pushed
to). Both must agree with a configured registry, so an event forged with a trusted host but sent
from another registry's topic (or the reverse) is rejected.

Configuration (`ACR_DEPLOY_REGISTRIES`, plus the rules file's registries): comma-separated
`LOGIN_SERVER` or `LOGIN_SERVER=RESOURCE_ID`. Comparisons are case-insensitive (ARM ids and DNS are).
- A resource id configured: the topic must equal it.
- Otherwise, for ACR login servers (`<name>.azurecr.io` and sovereign-cloud variants), the topic's
  registry name must equal the login server's first label.
- Other registries (e.g. the sandbox's `127.0.0.1:5000`) have no ARM topic: only the host is compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from shared.domain.references import REGISTRY_RESOURCE_ID, RegistryEntry

_ACR_HOST_RE = re.compile(r"[a-z0-9]+\.azurecr\.(?:io|cn|us|de)", re.IGNORECASE)


@dataclass(frozen=True)
class TrustedRegistry:
    login_server: str  # lowercased host[:port]
    resource_id: str = ""  # lowercased, no trailing '/'; "" = not pinned

    @classmethod
    def parse(cls, entry: str) -> "TrustedRegistry":
        """`LOGIN_SERVER` or `LOGIN_SERVER=RESOURCE_ID`. Raises ValueError naming the entry."""
        parsed = RegistryEntry.parse(entry)
        server, resource_id = parsed.login_server, parsed.resource_id.lower().rstrip("/")
        if not server or "/" in server or " " in server:
            raise ValueError(f"trusted registry {entry!r}: expected LOGIN_SERVER[=RESOURCE_ID]")
        if resource_id and not REGISTRY_RESOURCE_ID.fullmatch(resource_id):
            raise ValueError(
                f"trusted registry {entry!r}: resource id must look like /subscriptions/<id>/"
                "resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>"
            )
        return cls(server, resource_id)


def trusted_registries(entries: Iterable[Any]) -> tuple[TrustedRegistry, ...]:
    """Normalise configured entries: strings (settings/rules syntax) or objects with
    `login_server` (and optionally `resource_id`) attributes. Duplicates collapse."""
    seen: dict[tuple[str, str], TrustedRegistry] = {}
    for entry in entries:
        if isinstance(entry, TrustedRegistry):
            reg = entry
        elif isinstance(entry, str):
            if not entry.strip():
                continue
            reg = TrustedRegistry.parse(entry)
        else:
            server = str(getattr(entry, "login_server", "") or "")
            rid = str(getattr(entry, "resource_id", "") or "")
            reg = TrustedRegistry.parse(f"{server}={rid}" if rid else server)
        seen.setdefault((reg.login_server, reg.resource_id), reg)
    return tuple(seen.values())


def untrusted_reason(topic: str, host: str, registries: Iterable[TrustedRegistry]) -> str | None:
    """None when the event's registry is trusted, else why not (for the rejection record)."""
    host = (host or "").lower()
    topic = (topic or "").lower().rstrip("/")
    candidates = [r for r in registries if r.login_server == host]
    if not candidates:
        return f"registry {host or '(none)'} is not a trusted registry (ACR_DEPLOY_REGISTRIES)"
    for reg in candidates:
        if reg.resource_id:
            if topic == reg.resource_id:
                return None
        elif _ACR_HOST_RE.fullmatch(host):
            match = REGISTRY_RESOURCE_ID.fullmatch(topic)
            if match and match.group(1) == host.split(".", 1)[0]:
                return None
        else:
            return None  # non-ACR registry: no ARM topic to compare
    return (
        f"event source {topic[:200] or '(none)'} is not the registry resource configured for {host}"
    )
