"""The CLI contract (prints its URL, writes ca.pem, seeds, stops cleanly on SIGTERM) and --state persistence."""
from __future__ import annotations

import contextlib
import os
import selectors
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import HttpResponseError

from devtools.aca_emulator import EmulatorServer

from .helpers import LocalCredential, SUB, create_app, make_client, revisions

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_SEED = ROOT / "devtools" / "aca_emulator" / "sample-seed.yaml"


def _read_url(proc: subprocess.Popen, timeout: float = 20) -> str:
    """The base URL the CLI prints; bounded: select() keeps a silent, hung process from blocking the test."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(deadline - time.monotonic(), 0.01)):
                continue
            line = proc.stdout.readline()
            if "listening on" in line:
                return line.strip().rsplit(" ", 1)[-1]
            if not line and proc.poll() is not None:
                break
    proc.kill()
    raise AssertionError(f"emulator did not start: {proc.stderr.read()}")


@contextlib.contextmanager
def _cli(*args: str):
    """Run the CLI as a subprocess; whatever happens in the block, the process does not outlive it."""
    proc = subprocess.Popen([sys.executable, "-m", "devtools.aca_emulator", "--port", "0", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc, _read_url(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_cli_start_seed_sigterm(tmp_path):
    tls = tmp_path / "tls"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.aca_emulator", "--host", "127.0.0.1", "--port", "0",
         "--tls-dir", str(tls), "--seed", str(SAMPLE_SEED), "--provisioning-delay", "0.01"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = _read_url(proc)
        assert url.startswith("https://127.0.0.1:")
        assert (tls / "ca.pem").exists()

        class Emu:  # what make_client needs
            base_url, ca_path = url, str(tls / "ca.pem")
        with make_client(Emu) as client:
            apps = {a.name: a for a in client.container_apps.list_by_subscription()}
            assert set(apps) == {"orders-api", "catalog-api", "billing-worker", "ledger-api", "admin-api"}
            catalog = apps["catalog-api"].properties.configuration
            assert catalog.active_revisions_mode == "Labels"
            assert [(t.label, t.revision_name, t.weight) for t in catalog.ingress.traffic] == [
                ("blue", "catalog-api--v3-0-0", 100)]
            assert apps["billing-worker"].properties.configuration.ingress is None
            assert ".internal." in apps["ledger-api"].properties.configuration.ingress.fqdn
            assert apps["orders-api"].tags["acr-deploy.repository"] == "orders-api"
            fqdn = apps["orders-api"].properties.configuration.ingress.fqdn
        with httpx.Client(verify=ssl.create_default_context(cafile=str(tls / "ca.pem"))) as http:
            body = http.get(f"https://{fqdn}/").json()
            assert body == {**body, "app": "orders-api", "revision": "orders-api--v1-0-0",
                            "image": "myregistry.azurecr.io/orders-api:1.0.0"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        with httpx.Client(verify=ssl.create_default_context(cafile=str(tls / "ca.pem"))) as http:
            try:
                http.get(f"https://{fqdn}/", timeout=2)
                raise AssertionError("revision port still serving after shutdown")
            except httpx.TransportError:
                pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def test_state_persists_across_restart(tmp_path):
    tls, state = tmp_path / "tls", tmp_path / "state.json"
    with EmulatorServer(tls_dir=tls, state_file=state, seed={"resourceGroups": [
            {"name": "rg", "location": "westeurope", "environments": [{"name": "env"}]}]}) as emu:
        with make_client(emu) as client:
            create_app(client, suffix="v1", tags={"k": "v"})
        ca_before = Path(emu.ca_path).read_bytes()
    assert state.exists()
    with EmulatorServer(tls_dir=tls, state_file=state) as emu:
        assert Path(emu.ca_path).read_bytes() == ca_before  # clients keep trusting the same CA
        with make_client(emu) as client:
            app = client.container_apps.get("rg", "orders-api")
            assert app.tags == {"k": "v"} and app.properties.latest_revision_name == "orders-api--v1"
            rev = revisions(client)["orders-api--v1"].properties
        with httpx.Client(verify=ssl.create_default_context(cafile=emu.ca_path)) as http:
            assert http.get(f"https://{rev.fqdn}/").json()["revision"] == "orders-api--v1"


def test_in_process_defaults_and_context_manager(tmp_path):
    emu = EmulatorServer(tls_dir=tmp_path)
    emu.start()
    try:
        assert emu.base_url.startswith("https://127.0.0.1:") and os.path.exists(emu.ca_path)
        assert emu.control.health() == {"status": "ok"}
        assert emu.control.config()["provisioning_delay"] == 0.0
        assert LocalCredential().get_token("x").token  # sanity of the helper used everywhere
        assert SUB == "00000000-0000-0000-0000-000000000000"
    finally:
        emu.stop()


def test_cli_state_file_survives_sigterm_and_restart(tmp_path):
    """The CLI contract end to end: --state + --seed, SDK changes, SIGTERM, restart with the same --state."""
    tls, state = tmp_path / "tls", tmp_path / "state.json"
    args = ("--tls-dir", str(tls), "--state", str(state), "--seed", str(SAMPLE_SEED), "--provisioning-delay", "0")

    class Emu:  # what make_client needs
        ca_path = str(tls / "ca.pem")

    with _cli(*args) as (proc, url):
        Emu.base_url = url
        with make_client(Emu) as client:
            client.container_apps.begin_update("rg-apps", "orders-api", {
                "tags": {"acr-deploy.repository": "orders-api", "kept": "yes"},
                "properties": {
                    "template": {"revisionSuffix": "v2", "containers": [
                        {"name": "orders-api", "image": "myregistry.azurecr.io/orders-api:2.0.0"}]},
                    "configuration": {"ingress": {"traffic": [
                        {"revisionName": "orders-api--v1-0-0", "weight": 70},
                        {"revisionName": "orders-api--v2", "weight": 30, "label": "canary"}]}}}}).result()
            before = {r.name: (r.properties.traffic_weight, r.properties.fqdn) for r in
                      client.container_apps_revisions.list_revisions("rg-apps", "orders-api")}
        assert before["orders-api--v2"][0] == 30
        _stop(proc)
    assert state.exists()

    with _cli(*args) as (proc, url):
        Emu.base_url = url
        with make_client(Emu) as client:
            app = client.container_apps.get("rg-apps", "orders-api")
            # PATCH merged the tags (RFC 7386) and the seed, applied again at start, did not reset them.
            assert app.tags == {"acr-deploy.repository": "orders-api", "acr-deploy.tags": "semver:1.x", "kept": "yes"}
            assert app.properties.latest_revision_name == "orders-api--v2"
            after = {r.name: r.properties for r in
                     client.container_apps_revisions.list_revisions("rg-apps", "orders-api")}
            assert {name: p.traffic_weight for name, p in after.items()} == {
                "orders-api--v1-0-0": 70, "orders-api--v2": 30}
            assert {a.name for a in client.container_apps.list_by_subscription()} == {
                "orders-api", "catalog-api", "billing-worker", "ledger-api", "admin-api"}
            label = {t["label"]: t["fqdn"] for t in app.properties.configuration.ingress.traffic if t.get("label")}
        with httpx.Client(verify=ssl.create_default_context(cafile=Emu.ca_path), timeout=5) as http:
            assert http.get(f"https://{after['orders-api--v2'].fqdn}/").json()["revision"] == "orders-api--v2"
            assert http.get(f"https://{label['canary']}/").json()["revision"] == "orders-api--v2"
        _stop(proc)


def test_cli_rbac_mode_answers_403_outside_the_assignments(tmp_path):
    rbac = tmp_path / "rbac.yaml"
    rbac.write_text(f"- principal: '*'\n  scope: /subscriptions/{SUB}/resourceGroups/rg-apps/providers/Microsoft.App/"
                    "containerApps/orders-api\n  actions: ['Microsoft.App/containerApps/read']\n")
    with _cli("--tls-dir", str(tmp_path / "tls"), "--seed", str(SAMPLE_SEED), "--rbac", str(rbac)) as (proc, url):
        class Emu:
            base_url, ca_path = url, str(tmp_path / "tls" / "ca.pem")
        with make_client(Emu) as client:
            assert client.container_apps.get("rg-apps", "orders-api").name == "orders-api"
            with pytest.raises(HttpResponseError) as denied:
                client.container_apps.get("rg-apps", "billing-worker")
            assert denied.value.status_code == 403 and denied.value.error.code == "AuthorizationFailed"
        _stop(proc)
