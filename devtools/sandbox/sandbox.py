"""Start, inspect and stop the whole local pipeline (`python -m devtools.sandbox up|status|down`).

Everything listens on 127.0.0.1, each on a free port, as child processes in their own process
groups (pid files in `<dir>/pids/`, logs in `<dir>/logs/`):

  azurite    tables + queues (+ blobs), data in <dir>/azurite        devtools.azurite
  emulator   Container Apps ARM emulator, seeded from seed.yaml         devtools.aca_emulator
  registry   Debian's docker-registry, notifications -> bridge          /usr/bin/docker-registry
  bridge     registry notifications -> Event Grid deliveries            devtools.sandbox.bridge
  host       function_app.py under the dev host                        devtools.host

`up` writes `<dir>/endpoints.json` (what scripts and tests read) once every health check passed.
The directory defaults to `.sandbox/` in the repository; tests pass their own temp directory, so
two sandboxes never share ports, pids or data.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
import yaml

from devtools.netutil import free_port
from devtools.sandbox.bridge import BridgeConfig
from devtools.sandbox.oci import VARIANTS
from devtools.sandbox.procs import ProcessTable

ROOT = Path(__file__).resolve().parents[2]  # the function app root (function_app.py, host.json)
HERE = Path(__file__).resolve().parent
DEFAULT_DIR = ROOT / ".sandbox"
DEFAULT_RULES = HERE / "rules.yaml"
DEFAULT_SEED = HERE / "seed.yaml"

HOST = "127.0.0.1"
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "sandbox"
REGISTRY_NAME = "sandbox"
REGISTRY_RESOURCE_ID = (
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/Microsoft.ContainerRegistry/registries/{REGISTRY_NAME}"
)
# Stop order: the producers of work first, storage last.
STOP_ORDER = ["registry", "bridge", "host", "chat", "emulator", "azurite"]
# Images whose repository starts with broken- answer 500 everywhere (smoke checks fail).
STANDING_BEHAVIORS = [{"image": "*/broken-*", **VARIANTS["broken"]}]


class SandboxError(RuntimeError):
    """Something the user must act on; the message names the log file to read."""


@dataclass
class Sandbox:
    dir: Path = DEFAULT_DIR
    rules_file: Path | None = None  # None: devtools/sandbox/rules.yaml
    schema: str = "eventgrid"
    keep_data: bool = False  # reuse the previous run's storage, registry and emulator state
    timeout_s: float = 60.0  # per health check
    bridge_options: dict[str, Any] = field(default_factory=dict)  # BridgeConfig overrides (tests)
    webhook_override: str | None = None  # deliver somewhere else than the function (tests)
    use_registry: bool | None = None  # None: when docker-registry is installed
    # Run the emulator in RBAC mode with exactly the custom role infra/app/containerapps-role.bicep grants,
    # assigned on the sandbox resource group as the Bicep does (off until the pipeline stops reading
    # operation-status URLs, which sit at subscription scope).
    rbac: bool = True  # the pipeline gets exactly the role infra/ grants, as in Azure
    echo: Callable[[str], None] = print

    def __post_init__(self) -> None:
        self.dir = Path(self.dir).resolve()
        if self.schema not in ("eventgrid", "cloudevents"):
            raise SandboxError(f"--schema must be eventgrid or cloudevents, not {self.schema!r}")
        self.procs = ProcessTable(self.dir)

    # ------------------------------------------------------------------ paths
    @property
    def endpoints_path(self) -> Path:
        return self.dir / "endpoints.json"

    @property
    def deadletter_dir(self) -> Path:
        return self.dir / "deadletter"

    @property
    def images_dir(self) -> Path:
        return self.dir / "images"

    def log(self, name: str) -> Path:
        return self.procs.log_path(name)

    # ------------------------------------------------------------------ up
    def up(self) -> dict[str, Any]:
        running = self.procs.running()
        if running:
            raise SandboxError(
                f"a sandbox is already running in {self.dir} ({', '.join(sorted(running))}); "
                "stop it with `python -m devtools.sandbox down` first"
            )
        rules = self._checked_rules()
        self.procs.stop_all()  # clears stale pid files of a crashed run
        self._prepare_dir()
        registry_bin = shutil.which("docker-registry")
        use_registry = bool(registry_bin) if self.use_registry is None else self.use_registry
        if use_registry and not registry_bin:
            raise SandboxError("docker-registry is not installed (make setup installs it as root)")
        try:
            return self._start_all(rules, registry_bin if use_registry else None)
        except BaseException:
            self.echo("start-up failed; stopping what was started")
            self.procs.stop_all(STOP_ORDER)
            raise

    def _checked_rules(self) -> Path:
        """A broken rules file is reported now, with every problem, not at the first push."""
        from shared.domain.rules import RulesError, load_rules_file

        rules = Path(self.rules_file or DEFAULT_RULES).resolve()
        try:
            load_rules_file(rules, subscription=SUBSCRIPTION_ID, resource_group=RESOURCE_GROUP)
        except RulesError as exc:
            raise SandboxError(str(exc)) from exc
        return rules

    def _prepare_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.keep_data:
            for name in ("azurite", "registry", "emulator", "deadletter", "images", "logs"):
                shutil.rmtree(self.dir / name, ignore_errors=True)
            for name in ("endpoints.json", "behaviors.json"):
                (self.dir / name).unlink(missing_ok=True)
        for name in ("logs", "deadletter", "images"):
            (self.dir / name).mkdir(parents=True, exist_ok=True)
        gitignore = self.dir / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("*\n")

    def _env(self, **extra: str) -> dict[str, str]:
        """The children's environment. App settings of the user's shell are dropped: func start
        (and the dev host) let the environment win over local.settings.json, and a stray
        ACR_DEPLOY_RULES_FILE must not silently replace the sandbox's."""
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith("ACR_DEPLOY_") or k.startswith("AzureWebJobs"))}
        env.update(extra)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        return env

    def _start_all(self, rules: Path, registry_bin: str | None) -> dict[str, Any]:
        started = time.monotonic()
        registry_port, bridge_port, host_port = self._registry_port(), free_port(HOST), free_port(HOST)
        registry = f"{HOST}:{registry_port}"

        # 1. Azurite (tables, queues; blobs too: AzureWebJobsStorage is expected to have them)
        from devtools.azurite import Azurite

        self.echo("starting azurite ...")
        azurite = Azurite(host=HOST, workdir=str(self.dir / "azurite"), log_file=str(self.log("azurite")))
        try:
            azurite.start(timeout_s=self.timeout_s)
        except (OSError, TimeoutError) as exc:
            raise SandboxError(f"azurite did not start: {exc} (log: {self.log('azurite')})") from exc
        self.procs.adopt("azurite", azurite.process.pid, popen=azurite.process)

        # 2. The Container Apps emulator, seeded with the sample environment and apps
        self.echo("starting the Container Apps emulator ...")
        arm_url, arm_ca = self._start_emulator(registry)
        environment_id = self._configure_emulator(arm_url, arm_ca)

        # 3. The bridge, then the registry that notifies it
        function_url = f"http://{HOST}:{host_port}"
        function_key = secrets.token_urlsafe(24)
        webhook = f"{function_url}/runtime/webhooks/EventGrid?functionName=on_image_pushed&code={function_key}"
        self.echo("starting the Event Grid bridge ...")
        bridge_config = BridgeConfig(
            webhook_url=self.webhook_override or webhook, registry=registry, topic=REGISTRY_RESOURCE_ID,
            deadletter_dir=str(self.deadletter_dir), schema=self.schema, host=HOST, port=bridge_port,
            **{"default_actor": pusher(), **self.bridge_options},
        )
        bridge_config.write(self.dir / "bridge.json")
        self.procs.spawn("bridge", [sys.executable, "-m", "devtools.sandbox.bridge",
                                    "--config", str(self.dir / "bridge.json")], env=self._env(), cwd=ROOT)
        bridge_url = f"http://{HOST}:{bridge_port}"
        self._wait_http("bridge", f"{bridge_url}/healthz")

        if registry_bin:
            self.echo("starting docker-registry ...")
            config = self._write_registry_config(registry_port, f"{bridge_url}/registry/events")
            self.procs.spawn("registry", [registry_bin, "serve", str(config)], env=self._env(), cwd=self.dir)
            self._wait_http("registry", f"http://{registry}/v2/")
        else:
            self.echo("no registry (docker-registry not installed or turned off): "
                      "`push` will send ImagePushed events directly")

        # 4. A local stand-in for the Teams and Slack webhooks the rules notify
        chat_port = free_port(HOST)
        chat_url = f"http://{HOST}:{chat_port}"
        # --ready-file names the sandbox directory on the command line: `down` and `status` only
        # touch processes whose command line does (a stale pid file never kills a stranger).
        self.procs.spawn("chat", [sys.executable, "-m", "devtools.chat_receiver", "--port", str(chat_port),
                                  "--ready-file", str(self.dir / "chat.url")], env=self._env(), cwd=ROOT)
        self._wait_http("chat", f"{chat_url}/healthz")

        # 5. The function app under the dev host
        self.echo("starting the function app (dev host) ...")
        settings = self._function_settings(registry, arm_url, arm_ca, azurite.connection_string, rules, host_port)
        settings["Values"].update(SANDBOX_TEAMS_URL=f"{chat_url}/hooks/teams-releases",
                                  SANDBOX_SLACK_URL=f"{chat_url}/hooks/slack-releases")
        settings_path = self.dir / "local.settings.json"
        settings_path.write_text(json.dumps(settings, indent=2))
        os.chmod(settings_path, 0o600)
        # The key travels in the environment, not on the command line (which `ps` shows).
        self.procs.spawn("host", [sys.executable, "-m", "devtools.host", "--port", str(host_port),
                                  "--app-dir", str(ROOT), "--settings", str(settings_path)],
                         env=self._env(DEVHOST_FUNCTION_KEY=function_key), cwd=ROOT)
        self._wait_http("host", f"{function_url}/admin/host/status", headers={"x-functions-key": function_key})

        endpoints = {
            "function_url": function_url,
            "function_key": function_key,
            "eventgrid_webhook_url": webhook,
            "registry": registry,
            "registry_mode": "registry" if registry_bin else "direct",
            "registry_resource_id": REGISTRY_RESOURCE_ID,
            "bridge_url": bridge_url,
            "chat_url": chat_url,
            "schema": self.schema,
            "arm_url": arm_url,
            "arm_ca": arm_ca,
            "subscription_id": SUBSCRIPTION_ID,
            "resource_group": RESOURCE_GROUP,
            "environment_id": environment_id,
            "storage_connection_string": azurite.connection_string,
            "rules_file": str(rules),
            "deadletter_dir": str(self.deadletter_dir),
            "logs_dir": str(self.procs.log_dir),
            "dir": str(self.dir),
        }
        self.endpoints_path.write_text(json.dumps(endpoints, indent=2))
        os.chmod(self.endpoints_path, 0o600)  # holds the function key
        self.echo(f"sandbox up in {time.monotonic() - started:.1f}s")
        return endpoints

    def _registry_port(self) -> int:
        """With --keep, the registry keeps its login server (host:port) when that port is free, so
        images and history of the previous run still name a registry that exists."""
        previous = self.dir / "bridge.json"
        if self.keep_data and previous.exists():
            try:
                port = int(json.loads(previous.read_text())["registry"].rpartition(":")[2])
                with socket.socket() as probe:
                    probe.bind((HOST, port))
                return port
            except (OSError, ValueError, KeyError):
                pass
        return free_port(HOST)

    def _start_emulator(self, registry: str) -> tuple[str, str]:
        emu_dir = self.dir / "emulator"
        emu_dir.mkdir(parents=True, exist_ok=True)
        seed = yaml.safe_load(DEFAULT_SEED.read_text().replace("{registry}", registry))
        seed["subscriptionId"] = SUBSCRIPTION_ID
        (emu_dir / "seed.yaml").write_text(yaml.safe_dump(seed, sort_keys=False))
        log = self.log("emulator")
        offset = log.stat().st_size if log.exists() else 0
        rbac_args: list[str] = []
        if self.rbac:
            scope = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}"
            (emu_dir / "rbac.yaml").write_text(yaml.safe_dump([  # infra/app/containerapps-role-assignment.bicep
                {"principal": "*", "scope": scope,
                 "role_bicep": str(ROOT / "infra" / "app" / "containerapps-role.bicep")},
                {"principal": "*", "scope": scope, "builtin_role": "Monitoring Reader"}]))
            rbac_args = ["--rbac", str(emu_dir / "rbac.yaml")]
        self.procs.spawn("emulator", [
            sys.executable, "-m", "devtools.aca_emulator", "--host", HOST, "--port", "0",
            "--tls-dir", str(emu_dir / "tls"), "--state", str(emu_dir / "state.json"),
            "--seed", str(emu_dir / "seed.yaml"), *rbac_args,
        ], env=self._env(), cwd=ROOT)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")[offset:] if log.exists() else ""
            found = re.search(r"listening on (https://[^\s]+)", text)
            if found:
                ca = emu_dir / "tls" / "ca.pem"
                if ca.exists():
                    return found.group(1).rstrip("/"), str(ca)
            if self.procs.exited("emulator") is not None:
                break
            time.sleep(0.1)
        raise SandboxError(f"the Container Apps emulator did not start (log: {log})")

    def _configure_emulator(self, arm_url: str, arm_ca: str) -> str:
        from devtools.aca_emulator import EmulatorControl

        with EmulatorControl(arm_url, arm_ca) as control:
            control.health()
            for behavior in STANDING_BEHAVIORS + load_behaviors(self.dir):
                control.add_behavior(**behavior_args(behavior))
            envs = [e for e in control.dump().get("environments", [])
                    if f"/resourcegroups/{RESOURCE_GROUP}/" in str(e.get("id", "")).lower()]
        if not envs:
            raise SandboxError(f"the emulator has no environment in resource group {RESOURCE_GROUP} "
                               f"(seed: {self.dir / 'emulator' / 'seed.yaml'}; log: {self.log('emulator')})")
        return str(envs[0]["id"])

    def _write_registry_config(self, port: int, notify_url: str) -> Path:
        reg_dir = self.dir / "registry"
        (reg_dir / "data").mkdir(parents=True, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(reg_dir / "data")}, "delete": {"enabled": True}},
            "http": {"addr": f"{HOST}:{port}", "secret": secrets.token_hex(16)},
            "notifications": {
                "events": {"includereferences": True},
                "endpoints": [{
                    "name": "eventgrid-bridge",
                    "url": notify_url,  # loopback, no Authorization header: the bridge is local-only
                    "timeout": "3s",  # the bridge answers at once; this bounds a stuck bridge
                    "threshold": 5,  # failures before the registry backs off
                    "backoff": "1s",
                    "ignore": {"mediatypes": ["application/octet-stream"], "actions": ["pull"]},
                }],
            },
        }
        path = reg_dir / "config.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        os.chmod(path, 0o600)  # http.secret
        return path

    def _function_settings(self, registry: str, arm_url: str, arm_ca: str, storage: str,
                           rules: Path, port: int) -> dict[str, Any]:
        """local.settings.json as func start reads it (the dev host reads the same shape)."""
        return {
            "IsEncrypted": False,
            "Values": {
                "FUNCTIONS_WORKER_RUNTIME": "python",
                "AzureWebJobsStorage": storage,
                "ACR_DEPLOY_ARM_ENDPOINT": arm_url,
                "ACR_DEPLOY_ARM_CA_BUNDLE": arm_ca,
                "ACR_DEPLOY_ARM_CREDENTIAL": "emulator",
                "ACR_DEPLOY_REGISTRIES": f"{registry}={REGISTRY_RESOURCE_ID}",
                "ACR_DEPLOY_SUBSCRIPTION_ID": SUBSCRIPTION_ID,
                "ACR_DEPLOY_RESOURCE_GROUP": RESOURCE_GROUP,
                "ACR_DEPLOY_RULES_FILE": str(rules),
                "ACR_DEPLOY_DISCOVERY_TTL_SECONDS": "5",
            },
            "Host": {"LocalHttpPort": port},
        }

    def _wait_http(self, name: str, url: str, headers: dict[str, str] | None = None) -> None:
        """Bounded wait for a 200 from a health URL; fails fast if the process died."""
        deadline = time.monotonic() + self.timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            code = self.procs.exited(name)
            if code is not None:
                raise SandboxError(f"{name} exited with status {code} during start-up (log: {self.log(name)})")
            try:
                response = httpx.get(url, headers=headers, timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        raise SandboxError(f"{name} not healthy after {self.timeout_s:.0f}s ({last}; log: {self.log(name)})")

    # ------------------------------------------------------------------ down / status
    def down(self) -> list[str]:
        report = self.procs.stop_all(STOP_ORDER)
        self.endpoints_path.unlink(missing_ok=True)
        return report

    def status(self) -> dict[str, Any]:
        recorded = self.procs.recorded()
        running = self.procs.running()
        endpoints = read_endpoints(self.dir, required=False)
        return {
            "dir": str(self.dir),
            "processes": {name: {"pid": pid, "running": name in running, "log": str(self.log(name))}
                          for name, pid in recorded.items()},
            "endpoints": endpoints,
            "deadlettered": len(list(self.deadletter_dir.glob("*.json"))) if self.deadletter_dir.is_dir() else 0,
        }


# ---------------------------------------------------------------------- shared helpers


def read_endpoints(directory: str | Path = DEFAULT_DIR, required: bool = True) -> dict[str, Any] | None:
    path = Path(directory) / "endpoints.json"
    if not path.exists():
        if required:
            raise SandboxError(f"no sandbox running in {directory} (start one: python -m devtools.sandbox up)")
        return None
    return json.loads(path.read_text())


def behavior_args(behavior: dict[str, Any]) -> dict[str, Any]:
    """A remembered behaviour as `EmulatorControl.add_behavior` keywords (every mode it names)."""
    args = {k: v for k, v in behavior.items() if k != "image" and v is not None}
    return {"image_glob": behavior["image"], "unhealthy": bool(args.pop("unhealthy", False)), **args}


def load_behaviors(directory: str | Path) -> list[dict[str, Any]]:
    path = Path(directory) / "behaviors.json"
    return json.loads(path.read_text()) if path.exists() else []


def remember_behavior(directory: str | Path, behavior: dict[str, Any]) -> None:
    """Image behaviours registered by `push` survive an `up --keep` restart of the emulator."""
    items = [b for b in load_behaviors(directory) if b["image"] != behavior["image"]] + [behavior]
    (Path(directory) / "behaviors.json").write_text(json.dumps(items, indent=2))


def pusher() -> str:
    """Who pushes to the sandbox's anonymous registry: the person running it (the event's actor)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "sandbox-user"


def public_endpoints(endpoints: dict[str, Any]) -> dict[str, Any]:
    """What may be printed: the function key stays in endpoints.json."""
    shown = dict(endpoints)
    if shown.get("function_key"):
        shown["function_key"] = "(in endpoints.json)"
    if shown.get("eventgrid_webhook_url"):
        shown["eventgrid_webhook_url"] = shown["eventgrid_webhook_url"].split("&code=")[0] + "&code=..."
    shown.pop("storage_connection_string", None)  # Azurite's well-known key, but still a key
    return shown
