"""local.settings.sample.json documents every app setting, and its Values work as local defaults."""

from __future__ import annotations

import json
from pathlib import Path

from shared.settings import SETTINGS, Settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "local.settings.sample.json").read_text())


def _app_settings(names) -> set[str]:
    """Host-level settings (FUNCTIONS_*) are the Functions runtime's, not the app's."""
    return {name for name in names if not name.startswith("FUNCTIONS_") and not name.startswith("_")}


def test_every_setting_is_documented_and_nothing_else():
    assert _app_settings(SAMPLE["Documentation"]) == set(SETTINGS)
    for name, text in SAMPLE["Documentation"].items():
        assert isinstance(text, str) and len(text) > 20, name


def test_values_are_known_settings():
    assert _app_settings(SAMPLE["Values"]) <= set(SETTINGS)
    assert SAMPLE["Values"]["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert all(isinstance(v, str) for v in SAMPLE["Values"].values())  # func start wants strings


def test_every_setting_has_a_local_value_or_says_why_not():
    missing = set(SETTINGS) - set(SAMPLE["Values"])
    for name in missing:
        assert "leave it out" in SAMPLE["Documentation"][name], name


def test_values_parse_into_settings_for_azurite_and_the_emulator():
    settings = Settings.from_env(SAMPLE["Values"])
    assert settings.storage_connection_string == "UseDevelopmentStorage=true"  # no trailing ';'
    assert settings.arm_credential == "emulator"
    assert settings.arm_endpoint.startswith("https://127.0.0.1:")
    assert settings.registries == ("myregistry.azurecr.io",)
    assert settings.discovery_resource_groups == ("rg-apps",)
    assert settings.rules_file is None and settings.events_endpoint is None  # empty = unset


def test_the_sample_is_what_the_dev_host_reads(tmp_path):
    from devtools.host import LocalSettings

    loaded = LocalSettings.from_file(ROOT / "local.settings.sample.json")
    assert loaded.local_http_port == 7071
    assert loaded.values == SAMPLE["Values"]


def test_local_settings_json_is_git_ignored():
    assert "local.settings.json" in (ROOT / ".gitignore").read_text().split()
