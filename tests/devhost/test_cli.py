"""`python -m devtools.host` as a process: banner, serving, clean stop on SIGTERM, and no secrets
(key, request bodies) in what it prints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx

from devtools.host.host import REPO_ROOT
from tests.devhost.conftest import FIXTURE_APP, fixture_settings


def test_cli_serves_and_stops_cleanly_on_sigterm(tmp_path):
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": fixture_settings(), "Host": {"LocalHttpPort": 0}}))
    key = "cli-secret-key-value"
    env = {**os.environ, "DEVHOST_FUNCTION_KEY": key, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.host", "--app-dir", str(FIXTURE_APP), "--settings", str(settings),
         "--no-queues", "--no-timers"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(line.startswith("Functions:") for line in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
        banner = next(line for line in lines if line.startswith("Dev host listening on "))
        url = banner.removeprefix("Dev host listening on ")
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        functions = next(line for line in lines if line.startswith("Functions:"))
        assert "echo [GET,POST /api/items/{id}]" in functions and "on_event [eventGrid]" in functions
        body = "request-body-that-must-not-be-logged"
        response = httpx.post(f"{url}/api/items/1?code={key}", content=body, timeout=10)
        assert response.status_code == 201
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    output = "\n".join(lines) + rest
    assert proc.returncode == 0
    assert "Dev host stopped" in output
    assert "Executed 'Functions.echo' (Succeeded" in output
    assert key not in output  # given by the user: never printed or logged
    assert body not in output


def test_cli_reports_a_broken_settings_file(tmp_path):
    settings = tmp_path / "local.settings.json"
    settings.write_text("{broken")
    result = subprocess.run(
        [sys.executable, "-m", "devtools.host", "--app-dir", str(FIXTURE_APP), "--settings", str(settings),
         "--port", "0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert "not valid JSON" in result.stderr
