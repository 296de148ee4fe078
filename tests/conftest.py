"""Shared fixtures: real local servers, started once per test session on free loopback ports.

- `azurite`: the npm Azurite (tables, queues, blobs), in memory.
- `emulator`: the project's Container Apps emulator (HTTPS, its own CA), in-process.
Tests isolate themselves with unique table prefixes / queue names / resource names rather than
restarting servers.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="session")
def azurite():
    from devtools.azurite import Azurite

    server = Azurite().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def storage_connection_string(azurite) -> str:
    return azurite.connection_string


@pytest.fixture
def table_prefix() -> str:
    """Unique per test: table names are alphanumeric, 3-63 chars, start with a letter."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    from devtools.aca_emulator import EmulatorServer

    tls_dir = tmp_path_factory.mktemp("aca-tls")
    server = EmulatorServer(host="127.0.0.1", port=0, tls_dir=str(tls_dir), provisioning_delay=0.0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def arm_client(emulator):
    """The real, unmodified azure-mgmt-appcontainers client pointed at the emulator."""
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    from shared.adapters.credentials import LocalEmulatorCredential

    client = ContainerAppsAPIClient(
        LocalEmulatorCredential(), SUBSCRIPTION, base_url=emulator.base_url,
        connection_verify=emulator.ca_path, polling_interval=0.05,
    )
    yield client
    client.close()


def require_tool(name: str) -> str:
    """Path of a system tool, or skip (fail in CI, where .ci/run sets ACR_DEPLOY_REQUIRE_E2E=1)."""
    import shutil

    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (make setup installs it as root)"
    if os.environ.get("ACR_DEPLOY_REQUIRE_E2E"):
        pytest.fail(message)
    pytest.skip(message)
