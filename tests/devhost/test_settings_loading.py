"""local.settings.json and host.json as the dev host reads them (and as func start does)."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import httpx
import pytest

from devtools.host import ConfigError, DevHost, HostConfig, LocalSettings, QueueOptions
from devtools.host.config import parse_timespan
from tests.devhost.conftest import FIXTURE_APP, fixture_settings


def test_local_settings_file_shape(tmp_path):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({
        "IsEncrypted": False,
        "Values": {"A": "1", "B": True, "C": 5, "D": None},
        "Host": {"LocalHttpPort": 7123},
        "Documentation": {"A": "ignored, like func start ignores unknown keys"},
    }))
    settings = LocalSettings.from_file(path)
    assert settings.values == {"A": "1", "B": "true", "C": "5"}
    assert settings.local_http_port == 7123


def test_plain_values_mapping_is_accepted():
    assert LocalSettings.from_dict({"X": "y"}).values == {"X": "y"}


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"IsEncrypted": true, "Values": {}}', "IsEncrypted"),
        ('{"Values": {"A": {"nested": 1}}}', "must be a string"),
        ('{"Values": {}, "Host": {"LocalHttpPort": "http"}}', "LocalHttpPort"),
    ],
)
def test_bad_settings_files_fail_clearly(tmp_path, content, message):
    path = tmp_path / "local.settings.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        LocalSettings.from_file(path)


def test_missing_settings_file_names_the_sample(tmp_path):
    with pytest.raises(ConfigError, match="local.settings.sample.json"):
        LocalSettings.from_file(tmp_path / "nope.json")


def test_host_json_queue_options_and_defaults():
    config = HostConfig.from_app_dir(FIXTURE_APP)
    assert config.route_prefix == "api"
    assert config.queues == QueueOptions(
        batch_size=4, new_batch_threshold=2, max_polling_interval_s=0.5,
        visibility_timeout_s=0.0, max_dequeue_count=3, message_encoding="base64",
    )
    defaults = HostConfig.from_dict({})
    assert defaults.queues.batch_size == 16 and defaults.queues.threshold == 8
    assert defaults.queues.max_polling_interval_s == 60 and defaults.queues.max_dequeue_count == 5


def test_repo_host_json_is_readable():
    from devtools.host.host import REPO_ROOT

    config = HostConfig.from_app_dir(REPO_ROOT)
    assert config.route_prefix == "api"
    assert config.queues.message_encoding == "base64"


@pytest.mark.parametrize("text, seconds", [("00:00:05", 5), ("00:01:00", 60), ("1.02:00:00", 93600),
                                          ("00:00:00.500", 0.5), (7, 7)])
def test_timespans(text, seconds):
    assert parse_timespan(text, name="x") == seconds


@pytest.mark.parametrize("raw", [{"batchSize": 0}, {"batchSize": 33}, {"messageEncoding": "utf8"},
                                 {"maxPollingInterval": "soon"}, {"maxDequeueCount": "x"}])
def test_bad_queue_options_fail_clearly(raw):
    with pytest.raises(ConfigError, match="host.json"):
        QueueOptions.from_dict(raw)


def test_route_prefix_from_host_json(tmp_path):
    app = tmp_path / "app"
    shutil.copytree(FIXTURE_APP, app)
    host_json = json.loads((app / "host.json").read_text())
    host_json["extensions"]["http"]["routePrefix"] = ""
    (app / "host.json").write_text(json.dumps(host_json))
    with DevHost(app_dir=app, settings=fixture_settings(), port=0, queues=False, timers=False) as host:
        assert httpx.get(f"{host.url}/public/ping", timeout=5).text == "pong"
        assert httpx.get(f"{host.url}/api/public/ping", timeout=5).status_code == 404


def test_values_reach_the_environment_before_import_and_are_restored(tmp_path):
    name = "DEVHOST_TEST_" + uuid.uuid4().hex[:8].upper()
    app = tmp_path / "app"
    shutil.copytree(FIXTURE_APP, app)
    # The app reads the setting at import time, as function_app modules often do.
    source = (app / "function_app.py").read_text()
    (app / "function_app.py").write_text(
        source.replace("app = func.FunctionApp(", f'import os\nSEEN = os.environ.get("{name}")\napp = func.FunctionApp(', 1)
    )
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {**fixture_settings(), name: "from-file"},
                                "Host": {"LocalHttpPort": 0}}))
    host = DevHost(app_dir=app, settings_file=path, port=None, queues=False, timers=False)
    host.start()
    try:
        assert host.function("echo").callable.__globals__["SEEN"] == "from-file"
        assert os.environ[name] == "from-file"
        assert host.port  # LocalHttpPort 0 -> a free port
    finally:
        host.stop()
    assert name not in os.environ


def test_environment_wins_over_a_settings_file_like_func_start(tmp_path, monkeypatch):
    name = "DEVHOST_TEST_" + uuid.uuid4().hex[:8].upper()
    monkeypatch.setenv(name, "from-env")
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {**fixture_settings(), name: "from-file"}}))
    with DevHost(app_dir=FIXTURE_APP, settings_file=path, port=0, queues=False, timers=False):
        assert os.environ[name] == "from-env"
    with DevHost(app_dir=FIXTURE_APP, settings={name: "explicit", **fixture_settings()}, port=0,
                 queues=False, timers=False):
        assert os.environ[name] == "explicit"  # explicit settings override by default
    assert os.environ[name] == "from-env"


def test_queue_trigger_without_its_connection_fails_at_start():
    settings = fixture_settings()
    del settings["FixtureStorage"]
    with pytest.raises(ConfigError, match="FixtureStorage"):
        DevHost(app_dir=FIXTURE_APP, settings=settings, port=0, timers=False).start()


def test_key_from_environment_or_generated(monkeypatch):
    monkeypatch.setenv("DEVHOST_FUNCTION_KEY", "env-key")
    assert DevHost(app_dir=FIXTURE_APP).function_key == "env-key"
    monkeypatch.delenv("DEVHOST_FUNCTION_KEY")
    first, second = DevHost(app_dir=FIXTURE_APP), DevHost(app_dir=FIXTURE_APP)
    assert len(first.function_key) >= 32 and first.function_key != second.function_key
    assert first.key_generated


def test_the_app_folder_leaves_sys_path_on_stop():
    import sys

    assert str(FIXTURE_APP) not in sys.path
    with DevHost(app_dir=FIXTURE_APP, settings=fixture_settings(), port=0, queues=False, timers=False):
        assert str(FIXTURE_APP) in sys.path
    assert str(FIXTURE_APP) not in sys.path
