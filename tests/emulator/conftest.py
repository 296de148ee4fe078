"""Fixtures: one emulator per test session (reset before each test), SDK client, httpx client."""
from __future__ import annotations

import ssl

import httpx
import pytest

from devtools.aca_emulator import EmulatorServer

from .helpers import BASE_SEED, make_client


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    with EmulatorServer(host="127.0.0.1", port=0, tls_dir=tmp_path_factory.mktemp("tls"), seed=BASE_SEED,
                        provisioning_delay=0.0) as emu:
        yield emu


@pytest.fixture
def emu(emulator):
    emulator.control.reset()
    yield emulator
    emulator.control.clear_faults()


@pytest.fixture
def client(emu):
    with make_client(emu) as c:
        yield c


@pytest.fixture
def http(emu):
    with httpx.Client(verify=ssl.create_default_context(cafile=emu.ca_path), timeout=10) as h:
        yield h


