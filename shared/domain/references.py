"""Image references and registry entries: the one place that knows their grammar (pure).

- A reference, as Docker reads it: `[registry/]repository[:tag][@digest]`, where a first
  segment holding '.' or ':' (or `localhost`) is a registry (`split_registry`, `parse_reference`).
- An OCI repository name (`REPOSITORY`): lowercase components joined by '/'.
- A trusted-registry entry, as `ACR_DEPLOY_REGISTRIES` and the rules file's `registries:` write it:
  `LOGIN_SERVER` or `LOGIN_SERVER=RESOURCE_ID` (`RegistryEntry.parse`). Each caller decides how
  strict to be about the two halves: the rules file names the bad field, trust names the entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# OCI distribution spec: path components, each `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, joined by '/'.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")  # use with fullmatch
# A registry's login server as configured: lowercase DNS name or IPv4, optional port.
LOGIN_SERVER = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?")  # use with fullmatch
# An ACR's ARM resource id (Event Grid's `topic` / CloudEvents `source`); group 1 is its name.
REGISTRY_RESOURCE_ID = re.compile(
    r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.containerregistry/registries/([^/]+)",
    re.IGNORECASE,
)  # use with fullmatch


@dataclass(frozen=True)
class RegistryEntry:
    """`LOGIN_SERVER` or `LOGIN_SERVER=RESOURCE_ID`, split and trimmed but not validated."""

    login_server: str  # lowercased
    resource_id: str = ""  # as written (ARM ids compare case-insensitively); "" = not pinned

    @classmethod
    def parse(cls, entry: str) -> "RegistryEntry":
        login, _, resource_id = entry.partition("=")
        return cls(login.strip().lower(), resource_id.strip())

    def __str__(self) -> str:
        return f"{self.login_server}={self.resource_id}" if self.resource_id else self.login_server


def login_servers(entries: "list[str] | tuple[str, ...]") -> list[str]:
    """The login servers of `LOGIN_SERVER[=RESOURCE_ID]` entries, in order."""
    return [RegistryEntry.parse(e).login_server for e in entries]


def split_registry(reference: str) -> tuple[str | None, str]:
    """'myreg.azurecr.io/team/app' -> ('myreg.azurecr.io', 'team/app'); 'team/app' -> (None, ...)."""
    first, sep, rest = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower(), rest
    return None, reference


def parse_reference(reference: str) -> tuple[str | None, str, str | None, str | None]:
    """`[registry/]repository[:tag][@digest]` -> (registry or None, repository, tag, digest).
    ValueError when no repository is left."""
    text = reference.strip()
    digest = None
    if "@" in text:
        text, _, digest = text.partition("@")
    registry, text = split_registry(text)
    tag = None
    repository, colon, maybe_tag = text.rpartition(":")
    if colon and "/" not in maybe_tag:
        tag = maybe_tag
    else:
        repository = text
    if not repository:
        raise ValueError(f"{reference!r}: no repository name")
    return registry, repository, tag, digest


def repository_of(image: str) -> str:
    """'reg.io/team/app:1.2@sha256:..' -> 'team/app' ("" when the image names none)."""
    try:
        return parse_reference(image)[1]
    except ValueError:
        return ""
