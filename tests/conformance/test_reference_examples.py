"""Microsoft's published REST API examples for Microsoft.App 2026-07-01, replayed against the emulator.

The 15 example files live beside the repository in ``../shared/reference/containerapps-2026-07-01/`` (SOURCES.md
there names each one's origin). Each is replayed as raw HTTPS: the examples' synthetic names (several
subscriptions, resource groups, environments, apps, one-dash revision names) are mapped onto one set of emulator
resources, long-running operations are followed to their end, and the *keys* of every documented answer must
be present in the emulator's answer (values differ by design: names, ids, times, FQDNs). Keys the spec marks
secret must never come back. What still differs on purpose is listed in docs/emulator.md ("Conformance notes").
"""
from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import httpx
import pytest

from devtools.aca_emulator import DEFAULT_SUBSCRIPTION, EmulatorServer

SUB = DEFAULT_SUBSCRIPTION
RG = "rg-conformance"
ENV = "env-conformance"
APP = "conformance-app"
API = "api-version=2026-07-01"
AUTH = {"Authorization": "Bearer conformance"}
SUFFIXES = ("ab1234", "ab4321", "pjxhsye")  # every revision suffix the examples name
# Properties the 2026-07-01 spec marks x-ms-secret (write-only): never in an answer.
SECRET_KEYS = {"sharedKey", "certificatePassword", "certificateValue", "daprAIConnectionString",
               "daprAIInstrumentationKey", "password"}
EXAMPLES = (
    "ManagedEnvironments_CreateOrUpdate", "ManagedEnvironments_Get", "ManagedEnvironments_ListByResourceGroup",
    "ContainerApps_CreateOrUpdate", "ContainerApps_Get", "ContainerApps_Patch", "ContainerApps_Delete",
    "ContainerApps_ListByResourceGroup", "ContainerApps_ListBySubscription", "ContainerApps_ListSecrets",
    "Revisions_List", "Revisions_Get", "Revisions_Activate", "Revisions_Deactivate", "Revisions_Restart",
)


def _reference_dir() -> Path:
    """``<repo>/../shared/reference/``; in a git worktree, beside the main checkout instead."""
    repo = Path(__file__).resolve().parents[2]
    candidates = [repo.parent / "shared" / "reference"]
    git = repo / ".git"
    if git.is_file():  # a worktree: ".git" names <main>/.git/worktrees/<name>
        gitdir = Path(git.read_text().split("gitdir:", 1)[1].strip())
        candidates.append(gitdir.parents[2].parent / "shared" / "reference")
    for cand in candidates:
        if (cand / "containerapps-2026-07-01").is_dir():
            return cand / "containerapps-2026-07-01"
    raise AssertionError(f"reference examples not found (looked in {', '.join(map(str, candidates))}); "
                         "the conformance test needs ../shared/reference/ beside the repository")


def test_all_fifteen_examples_are_replayed():
    files = sorted(p.stem for p in _reference_dir().glob("*.json") if p.stem != "ContainerApps_LRO_spec_excerpts")
    assert files == sorted(EXAMPLES)


# ------------------------------------------------------------------ key comparison
def key_paths(value, prefix: str = "") -> set[str]:
    """Every key path of a JSON value; list items are merged (``traffic[].label``). Keys of maps whose keys
    are data (tags, userAssignedIdentities) are compared as they are: the replay sends the same ones."""
    out: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            out.add(f"{prefix}.{k}")
            out |= key_paths(v, f"{prefix}.{k}")
    elif isinstance(value, list):
        for item in value:
            out |= key_paths(item, f"{prefix}[]")
    return out


def secret_keys(value) -> set[str]:
    return {p for p in key_paths(value) if p.rsplit(".", 1)[-1] in SECRET_KEYS}


def assert_keys(example_body, actual_body, where: str) -> None:
    missing = sorted(key_paths(example_body) - key_paths(actual_body))
    assert not missing, f"{where}: keys the example documents but the emulator does not return: {missing}"
    leaked = sorted(secret_keys(actual_body))
    assert not leaked, f"{where}: the emulator returns keys the spec marks secret: {leaked}"


# ------------------------------------------------------------------ name mapping
def _env_id() -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.App/managedEnvironments/{ENV}"


def _revision(example_name: str) -> str:
    """``testcontainerApp0-pjxhsye`` (synthetic, one dash) -> ``conformance-app--pjxhsye``."""
    return f"{APP}--{example_name.rsplit('-', 1)[1]}"


def _map_body(body: dict) -> dict:
    body = json.loads(json.dumps(body))
    props = body.get("properties") or {}
    if "environmentId" in props:
        props["environmentId"] = _env_id()
    if "managedEnvironmentId" in props:
        props["managedEnvironmentId"] = _env_id()
    for entry in ((props.get("configuration") or {}).get("ingress") or {}).get("traffic") or []:
        if entry.get("revisionName"):
            entry["revisionName"] = _revision(entry["revisionName"])
    return body


def _path(params: dict, operation: str) -> str:
    base = f"/subscriptions/{SUB}"
    if operation.endswith("ListBySubscription"):
        return f"{base}/providers/Microsoft.App/containerApps"
    base += f"/resourceGroups/{RG}/providers/Microsoft.App"
    if operation.startswith("ManagedEnvironments_"):
        return f"{base}/managedEnvironments" + ("" if "environmentName" not in params else f"/{ENV}")
    if "containerAppName" not in params:
        return f"{base}/containerApps"
    path = f"{base}/containerApps/{APP}"
    if operation == "ContainerApps_ListSecrets":
        return f"{path}/listSecrets"
    if operation.startswith("Revisions_"):
        path += "/revisions"
        if "revisionName" in params:
            path += f"/{_revision(params['revisionName'])}"
            if operation != "Revisions_Get":
                path += "/" + operation.split("_", 1)[1].lower()
    return path


_METHODS = {"CreateOrUpdate": "PUT", "Patch": "PATCH", "Delete": "DELETE", "ListSecrets": "POST",
            "Activate": "POST", "Deactivate": "POST", "Restart": "POST"}


# ------------------------------------------------------------------ HTTP plumbing
@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with EmulatorServer(host="127.0.0.1", port=0, tls_dir=tmp_path_factory.mktemp("tls"),
                        provisioning_delay=0.0) as emu:
        yield emu


@pytest.fixture
def http(emulator):
    emulator.control.reset(seed=False)
    with httpx.Client(base_url=emulator.base_url, headers=AUTH, timeout=10,
                      verify=ssl.create_default_context(cafile=emulator.ca_path)) as client:
        yield client


def _url(path: str) -> str:
    return f"{path}?{API}"


def _follow(http: httpx.Client, resp: httpx.Response, method: str, path: str) -> httpx.Response:
    """Follow a long-running operation to its end (bounded), the way ARM clients do; the final answer."""
    if resp.status_code not in (201, 202):
        return resp
    status_url, location = resp.headers.get("Azure-AsyncOperation"), resp.headers.get("Location")
    deadline = time.monotonic() + 10
    for _ in range(500):
        assert time.monotonic() < deadline, f"{method} {path}: operation did not finish"
        if location and method != "PUT":  # final-state-via location (PATCH, DELETE)
            polled = http.get(location)
            if polled.status_code != 202:
                return polled
        else:  # final-state-via azure-async-operation: poll the status, then GET the resource
            status = http.get(status_url).json()["status"]
            if status != "InProgress":
                assert status == "Succeeded", f"{method} {path}: operation {status}"
                return http.get(_url(path))
        time.sleep(0.02)
    raise AssertionError(f"{method} {path}: operation did not finish")


def _write(http: httpx.Client, method: str, path: str, body: dict | None = None) -> httpx.Response:
    resp = http.request(method, _url(path), json=body)
    assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text}"
    return _follow(http, resp, method, path)


def _example(operation: str) -> dict:
    return json.loads((_reference_dir() / f"{operation}.json").read_text())


def _resources(operation: str) -> list[dict]:
    """The resource bodies an example's answer describes (one, or each listed one)."""
    answer = _example(operation)["responses"]["200"]["body"]
    return answer["value"] if "value" in answer else [answer]


def _env_path(name: str = ENV) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.App/managedEnvironments/{name}"


def _app_path(name: str = APP) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.App/containerApps/{name}"


def _app_body(operation: str) -> list[dict]:
    """What the example's app looked like, as a client would have written it: the example's own answer (the
    emulator drops what is read-only and must compute it), or for writes and actions the create request."""
    if operation in ("ContainerApps_Get", "ContainerApps_ListByResourceGroup", "ContainerApps_ListBySubscription"):
        return [_map_body(body) for body in _resources(operation)]
    body = _map_body(_example("ContainerApps_CreateOrUpdate")["parameters"]["containerAppEnvelope"])
    if operation in ("Revisions_Get", "Revisions_List"):
        body["properties"]["template"] = _resources(operation)[0]["properties"]["template"]
    return [body]


def _setup(http: httpx.Client, operation: str) -> None:
    """The resources an example assumes, under mapped names: the environment, and the app with revisions
    carrying every suffix the examples name (traffic on two of them, a label), secrets, then the example's
    own configuration and template on a last revision with a generated suffix."""
    if operation == "ManagedEnvironments_CreateOrUpdate":
        return
    envs = _resources(operation) if operation.startswith("ManagedEnvironments_") else [{"location": "East US"}]
    for i, env in enumerate(envs):
        _write(http, "PUT", _env_path(ENV if i == 0 else f"{ENV}-{i}"), env)
    if operation.startswith("ManagedEnvironments_"):
        return
    for i, body in enumerate(_app_body(operation)):
        name = APP if i == 0 else f"{APP}-{i}"
        conf = body["properties"].setdefault("configuration", {})
        conf.setdefault("secrets", [{"name": "secret1", "value": "one"}, {"name": "secret2", "value": "two"}])
        final_traffic, final_mode = conf.get("ingress", {}).get("traffic"), conf.get("activeRevisionsMode")
        conf["activeRevisionsMode"] = "Multiple"
        template = body["properties"]["template"]
        for n, suffix in enumerate(SUFFIXES):
            weights = ((100,), (20, 80), (0, 20, 80))[n]
            conf.setdefault("ingress", {})["traffic"] = [
                {"revisionName": f"{name}--{s}", "weight": w} for s, w in zip(SUFFIXES, weights)
            ] + [{"revisionName": f"{name}--{suffix}", "label": "staging"}]
            template["revisionSuffix"] = suffix
            _write(http, "PUT", _app_path(name), body)
        template.pop("revisionSuffix")  # a last revision with a generated suffix, as most apps have
        if operation not in ("Revisions_Activate", "Revisions_Deactivate", "Revisions_Restart"):
            if final_traffic is not None:
                conf["ingress"]["traffic"] = [dict(t, revisionName=t["revisionName"].replace(APP, name))
                                              for t in final_traffic]
            conf["activeRevisionsMode"] = final_mode or "Multiple"
        _write(http, "PUT", _app_path(name), body)
    if operation == "Revisions_Activate":
        _write(http, "POST", f"{_app_path()}/revisions/{APP}--pjxhsye/deactivate")


# ------------------------------------------------------------------ the replay
@pytest.mark.parametrize("operation", EXAMPLES)
def test_example(http, operation):
    example = _example(operation)
    params, responses = example["parameters"], example["responses"]
    _setup(http, operation)
    path = _path(params, operation)
    method = _METHODS.get(operation.split("_", 1)[1], "GET")
    body = next((v for k, v in params.items() if k.endswith("Envelope")), None)
    resp = http.request(method, _url(path), json=_map_body(body) if body is not None else None)
    assert str(resp.status_code) in responses, (
        f"{method} {path}: {resp.status_code} {resp.text[:400]}; the example documents {sorted(responses)}")
    documented = responses[str(resp.status_code)]
    headers = {h.lower() for h in documented.get("headers") or {}}
    assert headers <= {h.lower() for h in resp.headers}, f"{method} {path}: headers {resp.headers}"
    if "body" in documented:
        assert_keys(documented["body"], resp.json(), f"{operation} {resp.status_code}")
    final = _follow(http, resp, method, path)
    if final is not resp and "200" in responses and "body" in responses["200"]:
        assert final.status_code == 200, f"{method} {path}: final {final.status_code} {final.text[:400]}"
        assert_keys(responses["200"]["body"], final.json(), f"{operation} (final)")
    elif final is not resp:
        assert final.status_code in (200, 204), f"{method} {path}: final {final.status_code}"


def test_the_key_comparison_can_fail():
    documented = {"properties": {"traffic": [{"weight": 1}, {"label": "x"}], "sharedKey": None}}
    with pytest.raises(AssertionError, match=r"traffic\[\]\.label"):
        assert_keys(documented, {"properties": {"traffic": [{"weight": 1}], "sharedKey": None}}, "self-check")
    with pytest.raises(AssertionError, match="secret"):
        assert_keys({}, {"properties": {"appLogsConfiguration": {"sharedKey": "k"}}}, "self-check")
