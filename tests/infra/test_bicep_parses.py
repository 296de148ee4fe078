"""Every Bicep file under infra/ parses (pycep-parser), and the azd wiring around them is consistent."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from infra_model import INFRA, REPO_ROOT, bicep_files, module, modules, parse

EXPECTED_FILES = {
    "main.bicep",
    "app/acr-pull.bicep",
    "app/containerapps-role.bicep",
    "app/containerapps-role-assignment.bicep",
    "app/event-subscription.bicep",
    "app/eventgrid.bicep",
    "app/function.bicep",
    "app/monitoring.bicep",
    "app/notifications-topic.bicep",
    "app/rbac.bicep",
    "app/sample-app.bicep",
    "app/storage.bicep",
}


def test_the_expected_bicep_files_exist():
    found = {p.relative_to(INFRA).as_posix() for p in bicep_files()}
    assert EXPECTED_FILES <= found, f"missing: {sorted(EXPECTED_FILES - found)}"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path):
    parsed = parse(path)
    assert parsed.get("resources") or parsed.get("modules"), f"{path.name} declares nothing"


def test_every_module_path_resolves():
    for path in bicep_files():
        for mod in modules(parse(path)):
            target = (path.parent / mod.type).resolve()
            assert target.is_file(), f"{path.relative_to(INFRA)}: module {mod.symbol} -> {mod.type} missing"


def test_main_targets_the_subscription(main_bicep):
    assert main_bicep["globals"]["scope"]["value"] == "subscription"


def test_parameters_file_maps_onto_main_bicep(main_bicep):
    params_file = json.loads((INFRA / "main.parameters.json").read_text())
    mapped = set(params_file["parameters"])
    declared = main_bicep["parameters"]
    assert mapped <= set(declared), f"mapped but not declared: {sorted(mapped - set(declared))}"
    required = {name for name, p in declared.items() if "default" not in p}
    assert required <= mapped, f"required parameters azd cannot fill: {sorted(required - mapped)}"
    for name, entry in params_file["parameters"].items():
        assert re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*(=[^}]*)?\}", entry["value"]), (name, entry["value"])


def test_abbreviations_used_by_main_exist():
    abbrs = json.loads((INFRA / "abbreviations.json").read_text())
    used = set(re.findall(r"abbrs\.([A-Za-z]+)", (INFRA / "main.bicep").read_text()))
    assert used and used <= set(abbrs), f"unknown abbreviations: {sorted(used - set(abbrs))}"


def test_azure_yaml_deploys_the_function_app_and_runs_the_hooks():
    azure = yaml.safe_load((REPO_ROOT / "azure.yaml").read_text())
    assert azure["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    api = azure["services"]["api"]
    assert api == {"project": ".", "language": "python", "host": "function"}
    # main.bicep tags the function app with the same service name, so `azd deploy` finds it.
    assert module(parse(INFRA / "main.bicep"), "functionApp").body["params"]["serviceName"] == "api"
    for hook in ("preprovision", "postdeploy", "predown"):
        for platform, shell, ext in (("posix", "sh", ".sh"), ("windows", "pwsh", ".ps1")):
            entry = azure["hooks"][hook][platform]
            assert entry["shell"] == shell
            script = REPO_ROOT / entry["run"]
            assert script.suffix == ext and script.is_file(), entry["run"]
            assert entry.get("continueOnError") is False
