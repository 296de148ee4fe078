"""Infra tests: make the helper module importable whatever pytest's import mode is."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def main_bicep():
    from infra_model import INFRA, parse

    return parse(INFRA / "main.bicep")
