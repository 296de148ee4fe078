"""The credential the ARM client (and the outcome publisher) use.

`default`: `DefaultAzureCredential` (the Function App's managed identity in Azure; developer
sign-ins locally). `emulator`: a static local token that only the project's Container Apps emulator
accepts; it is refused next to the real ARM endpoint so a misconfiguration fails loudly instead of
sending a meaningless token to Azure. Tokens are never logged.
"""

from __future__ import annotations

import time
from typing import Any

EMULATOR_TOKEN = "local-emulator-token"  # not a secret: the emulator accepts any bearer token
_AZURE_ARM_HOSTS = ("management.azure.com", "management.usgovcloudapi.net", "management.chinacloudapi.cn")


class LocalEmulatorCredential:
    """A TokenCredential (and SupportsTokenInfo) for the emulator: same token for every scope."""

    def __init__(self, lifetime_s: int = 3600) -> None:
        self.lifetime_s = lifetime_s

    def _expiry(self) -> int:
        return int(time.time()) + self.lifetime_s

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(EMULATOR_TOKEN, self._expiry())

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(EMULATOR_TOKEN, self._expiry())

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "LocalEmulatorCredential()"


def get_arm_credential(settings: Any) -> Any:
    if getattr(settings, "arm_credential", "default") == "emulator":
        endpoint = (getattr(settings, "arm_endpoint", "") or "").lower()
        if any(host in endpoint for host in _AZURE_ARM_HOSTS):
            raise ValueError(
                "ACR_DEPLOY_ARM_CREDENTIAL=emulator works only with the local emulator; "
                f"ACR_DEPLOY_ARM_ENDPOINT points at Azure ({endpoint})"
            )
        return LocalEmulatorCredential()
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()
