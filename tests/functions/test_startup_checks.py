"""A broken rules file or setting fails at start-up (importing function_app.py), loudly."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _import_function_app(env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", **env_extra}
    return subprocess.run(
        [sys.executable, "-c", "import function_app"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )


def test_a_broken_rules_file_stops_the_import_naming_file_rule_and_field(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: orders\n    repository: orders-api\n    tags: {policy: semver, range: '>=1'}\n    targets: [{app: orders-api}]\n    smoke: [{path: /, expect_status: [999]}]\n")
    proc = _import_function_app({"ACR_DEPLOY_RULES_FILE": str(rules), "ACR_DEPLOY_SUBSCRIPTION_ID": "s",
                                 "ACR_DEPLOY_RESOURCE_GROUP": "rg"}, tmp_path)
    assert proc.returncode != 0
    assert "RulesError" in proc.stderr and str(rules) in proc.stderr and "orders" in proc.stderr
    assert "expect_status" in proc.stderr


def test_a_missing_rules_file_stops_the_import(tmp_path):
    proc = _import_function_app({"ACR_DEPLOY_RULES_FILE": str(tmp_path / "nope.yaml")}, tmp_path)
    assert proc.returncode != 0 and "file not found" in proc.stderr


def test_a_broken_setting_stops_the_import(tmp_path):
    proc = _import_function_app({"ACR_DEPLOY_ARM_CREDENTIAL": "password"}, tmp_path)
    assert proc.returncode != 0 and "ACR_DEPLOY_ARM_CREDENTIAL" in proc.stderr


def test_the_example_rules_file_imports_cleanly(tmp_path):
    proc = _import_function_app({"ACR_DEPLOY_RULES_FILE": "rules.example.yaml", "ACR_DEPLOY_SUBSCRIPTION_ID": "s",
                                 "ACR_DEPLOY_RESOURCE_GROUP": "rg"}, tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_an_unparseable_registry_setting_stops_the_import(tmp_path):
    proc = _import_function_app({"ACR_DEPLOY_REGISTRIES": "not a registry=/bad"}, tmp_path)
    assert proc.returncode != 0 and "ACR_DEPLOY_REGISTRIES" in proc.stderr


def test_a_rollout_message_that_is_not_json_is_logged_and_dropped(caplog):
    from shared import entrypoints
    from shared.bootstrap import reset_container

    class Boom:  # the worker must not be reached: there is no deployment to advance
        @property
        def rollout(self):
            raise AssertionError("worker called for a non-JSON message")

    reset_container(Boom())
    try:
        entrypoints.handle_rollout_message("{not json", 1)
    finally:
        reset_container(None)
    assert "not JSON" in caplog.text
