"""A DevHost serving tests/devhost/fixture_app on a free loopback port."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from devtools.host import DevHost

FIXTURE_APP = Path(__file__).parent / "fixture_app"
NEVER = "0 0 0 1 1 *"  # once a year: timers stay quiet unless a test asks otherwise


def fixture_settings(storage: str = "UseDevelopmentStorage=true", **extra: str) -> dict[str, str]:
    return {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "FixtureStorage": storage,
        "FIXTURE_QUEUE": "q" + uuid.uuid4().hex[:16],
        "FIXTURE_TIMER": NEVER,
        **extra,
    }


@pytest.fixture(scope="module")
def http_host():
    """HTTP and Event Grid only: no queue polling, no timers (no Azurite needed)."""
    host = DevHost(app_dir=FIXTURE_APP, settings=fixture_settings(), port=0,
                   function_key="test-key-123", queues=False, timers=False)
    host.start()
    yield host
    host.stop()


@pytest.fixture
def client(http_host):
    with httpx.Client(base_url=http_host.url, timeout=10) as c:
        yield c
