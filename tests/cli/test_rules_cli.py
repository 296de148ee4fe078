"""`acr-deploy rules check|explain` through the real console entry point (shared.cli.main)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli import main
from shared.cli._settings import load_env, load_settings

ROOT = Path(__file__).resolve().parents[2]
SUB = "00000000-0000-0000-0000-000000000000"

GOOD = f"""
registries: [myreg.azurecr.io]
defaults: {{subscription: {SUB}, resource_group: apps}}
rules:
  - name: orders
    repository: orders-api
    tags: {{semver: ">=1.2 <2"}}
    environment: production
    targets: [{{app: orders-api}}, {{app: orders-api-weu, resource_group: weu}}]
  - name: previews
    repository: web
    tags: {{regex: '^pr-(?P<pr>\\d+)$'}}
    targets: [{{app: "pr-{{group:pr}}"}}]
    rollout: {{strategy: canary, steps: [20, 100]}}
"""

BROKEN = f"""
defaults: {{subscription: {SUB}, resource_group: apps}}
rules:
  - name: orders
    repository: orders-api
    tags: {{semver: ">=1.2 <"}}
    targets: [{{app: Orders}}]
  - repository: web
    targetz: []
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty directory as cwd, with no acr-deploy settings leaking in from the environment."""
    for name in list(__import__("os").environ):
        if name.startswith("ACR_DEPLOY_") or name.startswith("AzureWebJobs"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_a_good_file(workdir, capsys):
    (workdir / "rules.yaml").write_text(GOOD)
    code, out, _ = run(capsys, "rules", "check", "--file", "rules.yaml")
    assert code == 0
    assert "rules.yaml: OK, 2 rules" in out
    assert "orders-api" in out and "apps/pr-{group:pr}" in out and "canary [20, 100]" in out
    assert "Registries: myreg.azurecr.io" in out


def test_check_a_broken_file_lists_every_problem(workdir, capsys):
    (workdir / "rules.yaml").write_text(BROKEN)
    code, out, _ = run(capsys, "rules", "check", "--file", "rules.yaml")
    assert code == 1
    assert "rules.yaml: 4 problems" in out
    assert "rules.yaml:6: rule orders: tags.semver: '<' needs a version" in out
    assert "rule orders: targets[0].app: 'Orders' is not valid" in out
    assert "rule #2: targetz: unknown key (did you mean 'targets'?)" in out
    assert "rule #2: targets: is required" in out


def test_check_json(workdir, capsys):
    (workdir / "rules.yaml").write_text(BROKEN)
    code, out, _ = run(capsys, "rules", "check", "--file", "rules.yaml", "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    assert {(p["rule"], p["field"]) for p in data["problems"]} == {
        ("orders", "tags.semver"), ("orders", "targets[0].app"), ("#2", "targetz"), ("#2", "targets")}
    (workdir / "rules.yaml").write_text(GOOD)
    code, out, _ = run(capsys, "rules", "check", "--file", "rules.yaml", "--json")
    data = json.loads(out)
    assert code == 0 and [r["name"] for r in data["rules"]] == ["orders", "previews"]


def test_check_the_example_file(workdir, capsys):
    code, out, _ = run(capsys, "rules", "check", "--file", str(ROOT / "rules.example.yaml"))
    assert code == 0, out
    assert "OK" in out and "disabled: legacy-batch" in out


def test_check_reads_the_rules_file_setting_from_local_settings_json(workdir, capsys):
    (workdir / "team-rules.yaml").write_text(BROKEN)
    (workdir / "local.settings.json").write_text(json.dumps(
        {"IsEncrypted": False, "Values": {"ACR_DEPLOY_RULES_FILE": "team-rules.yaml"}}))
    code, out, _ = run(capsys, "rules", "check")
    assert code == 1 and "team-rules.yaml: 4 problems" in out


def test_check_without_a_file_describes_the_convention(workdir, capsys, monkeypatch):
    monkeypatch.setenv("ACR_DEPLOY_SUBSCRIPTION_ID", SUB)
    monkeypatch.setenv("ACR_DEPLOY_RESOURCE_GROUP", "apps")
    code, out, _ = run(capsys, "rules", "check")
    assert code == 0 and "zero-config convention" in out and "same name in apps" in out
    monkeypatch.delenv("ACR_DEPLOY_RESOURCE_GROUP")
    code, out, _ = run(capsys, "rules", "check")
    assert code == 1 and "ACR_DEPLOY_RESOURCE_GROUP" in out


def test_explain_shows_matches_misses_and_targets(workdir, capsys):
    (workdir / "rules.yaml").write_text(GOOD)
    code, out, _ = run(capsys, "rules", "explain", "orders-api:1.4.2", "--file", "rules.yaml")
    assert code == 0
    assert "Push myreg.azurecr.io/orders-api:1.4.2 (placeholder digest)" in out
    assert "1.4.2 satisfies semver >=1.2 <2" in out
    assert "does not match web" in out
    assert "Would deploy" in out and "orders-api-weu" in out and "weu" in out
    assert "myreg.azurecr.io/orders-api@sha256:" + "0" * 20 in out


def test_explain_when_nothing_matches(workdir, capsys):
    (workdir / "rules.yaml").write_text(GOOD)
    code, out, _ = run(capsys, "rules", "explain", "orders-api:latest", "--file", "rules.yaml")
    assert code == 0
    assert "Nothing would be deployed: no rule matched: orders: tag 'latest' is not a semver version" in out


def test_explain_json_with_registry_and_digest(workdir, capsys):
    (workdir / "rules.yaml").write_text(GOOD)
    digest = "sha256:" + "ab" * 32
    code, out, _ = run(capsys, "rules", "explain", "web:pr-17", "--file", "rules.yaml",
                       "--registry", "other.azurecr.io", "--digest", digest, "--json")
    data = json.loads(out)
    assert code == 0
    assert data["registry_trusted"] is False and data["placeholder_digest"] is False
    (dep,) = data["deployments"]
    assert dep["app"] == "pr-17" and dep["image"] == f"other.azurecr.io/web@{digest}"
    assert dep["rollout"]["steps"] == [20, 100]
    assert [d["matched"] for d in data["decisions"]] == [False, True]


def test_explain_untrusted_registry_note_and_registry_in_the_reference(workdir, capsys):
    (workdir / "rules.yaml").write_text(GOOD)
    code, out, _ = run(capsys, "rules", "explain", "evil.example.com/orders-api:1.4.2", "--file", "rules.yaml")
    assert code == 0 and "registry evil.example.com is not trusted" in out


@pytest.mark.parametrize(
    "ref, message",
    [("orders-api", "expected REPOSITORY:TAG"), ("Orders:1.0.0", "not a repository name"),
     ("orders:-bad", "not a valid tag"), ("orders:1.0.0@sha256:xyz", "not a digest")],
)
def test_explain_rejects_bad_references(workdir, capsys, ref, message):
    (workdir / "rules.yaml").write_text(GOOD)
    code, _, err = run(capsys, "rules", "explain", ref, "--file", "rules.yaml")
    assert code == 2 and message in err


def test_explain_with_a_broken_file_fails(workdir, capsys):
    (workdir / "rules.yaml").write_text(BROKEN)
    code, _, err = run(capsys, "rules", "explain", "orders-api:1.4.2", "--file", "rules.yaml")
    assert code == 1 and "tags.semver" in err


def rows_of(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """CSV as a script reads it: the header row, then dicts."""
    return next(csv.reader(io.StringIO(text))), list(csv.DictReader(io.StringIO(text)))


def test_check_csv_one_row_per_rule(workdir, capsys):
    (workdir / "rules.yaml").write_text(GOOD)
    code, out, err = run(capsys, "rules", "check", "--file", "rules.yaml", "--csv")
    assert code == 0 and err == ""
    header, rows = rows_of(out)
    assert header == ["name", "source", "repository", "policy", "targets", "environment"]
    assert rows == [
        {"name": "orders", "source": "rules", "repository": "orders-api",
         "policy": "semver >=1.2 <2 (releases only)", "targets": "apps/orders-api;weu/orders-api-weu",
         "environment": "production"},
        {"name": "previews", "source": "rules", "repository": "web", "policy": r"regex ^pr-(?P<pr>\d+)$",
         "targets": "apps/pr-{group:pr}", "environment": ""},
    ]
    # Same data as --json.
    _, out, _ = run(capsys, "rules", "check", "--file", "rules.yaml", "--json")
    data = json.loads(out)
    assert [(r["name"], r["tags"], r["targets"]) for r in data["rules"]] == [
        (r["name"], r["policy"], r["targets"].split(";")) for r in rows]


def test_check_csv_one_row_per_problem_and_exit_1(workdir, capsys):
    (workdir / "rules.yaml").write_text(BROKEN)
    code, out, _ = run(capsys, "rules", "check", "--file", "rules.yaml", "--csv")
    assert code == 1
    header, rows = rows_of(out)
    assert header == ["file", "line", "rule", "field", "message"]
    assert [(r["file"], r["line"], r["rule"], r["field"]) for r in rows] == [
        ("rules.yaml", "6", "orders", "tags.semver"), ("rules.yaml", "7", "orders", "targets[0].app"),
        ("rules.yaml", "8", "#2", "targetz"), ("rules.yaml", "8", "#2", "targets")]
    assert rows[0]["message"] == "'<' needs a version after it"
    # a message with commas and quotes stays one cell
    assert rows[1]["message"].startswith("'Orders' is not valid: Container App names are 2-32 lowercase")
    _, out, _ = run(capsys, "rules", "check", "--file", "rules.yaml", "--json")
    assert [p["message"] for p in json.loads(out)["problems"]] == [r["message"] for r in rows]


def test_explain_csv_one_row_per_rule_and_target(workdir, capsys):
    (workdir / "rules.yaml").write_text(GOOD)
    digest = "sha256:" + "cd" * 32
    code, out, err = run(capsys, "rules", "explain", "orders-api:1.4.2", "--file", "rules.yaml",
                         "--digest", digest, "--csv")
    assert code == 0 and err == ""
    header, rows = rows_of(out)
    assert header == ["rule", "source", "matched", "stage", "reason", "app", "resource_group", "subscription",
                      "container", "image", "at"]
    image = f"myreg.azurecr.io/orders-api@{digest}"
    planned = [(r["rule"], r["matched"], r["stage"], r["app"], r["resource_group"], r["subscription"],
                r["container"], r["image"]) for r in rows]
    assert planned == [
        ("orders", "true", "planned", "orders-api", "apps", SUB, "", image),
        ("orders", "true", "planned", "orders-api-weu", "weu", SUB, "", image),
        ("previews", "false", "repository", "", "", "", "", ""),
    ]
    assert "1.4.2 satisfies semver >=1.2 <2" in rows[0]["reason"]
    assert rows[2]["reason"] == "repository myreg.azurecr.io/orders-api does not match web"


def test_explain_csv_carries_the_same_decisions_as_json(workdir, capsys):
    (workdir / "rules.yaml").write_text(GOOD)
    for ref in ("web:pr-17", "orders-api:latest", "orders-api:1.9.0"):
        _, out, _ = run(capsys, "rules", "explain", ref, "--file", "rules.yaml", "--json")
        data = json.loads(out)
        _, out, _ = run(capsys, "rules", "explain", ref, "--file", "rules.yaml", "--csv")
        rows = rows_of(out)[1]
        expected = [(d["rule"], d["source"], json.dumps(d["matched"]), d["stage"], d["reason"], t["app"])
                    for d in data["decisions"] for t in d["targets"] or [{"app": ""}]]
        assert [(r["rule"], r["source"], r["matched"], r["stage"], r["reason"], r["app"]) for r in rows] == expected
        assert {r["image"] for r in rows if r["app"]} == {p["image"] for p in data["deployments"]}


def test_explain_csv_keeps_stdout_pure_and_notes_an_untrusted_registry_on_stderr(workdir, capsys):
    (workdir / "rules.yaml").write_text(GOOD)
    code, out, err = run(capsys, "rules", "explain", "evil.example.com/web:pr-3", "--file", "rules.yaml", "--csv")
    assert code == 0 and "registry evil.example.com is not trusted" in err
    rows = rows_of(out)[1]
    assert [(r["rule"], r["matched"], r["app"]) for r in rows] == [("orders", "false", ""), ("previews", "true", "pr-3")]


@pytest.mark.parametrize("argv", [("check",), ("explain", "orders-api:1.4.2")])
def test_csv_and_json_are_mutually_exclusive(workdir, capsys, argv):
    (workdir / "rules.yaml").write_text(GOOD)
    with pytest.raises(SystemExit) as exit_:
        main(["rules", *argv, "--file", "rules.yaml", "--json", "--csv"])
    assert exit_.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_rules_without_a_subcommand_prints_help(workdir, capsys):
    code, out, _ = run(capsys, "rules")
    assert code == 2 and "check" in out and "explain" in out


def test_local_settings_json_is_under_the_environment(tmp_path):
    (tmp_path / "local.settings.json").write_text(json.dumps(
        {"Values": {"ACR_DEPLOY_RESOURCE_GROUP": "from-file", "ACR_DEPLOY_SUBSCRIPTION_ID": "sub-file",
                    "ACR_DEPLOY_DISCOVERY_TTL_SECONDS": 5, "Ignored": None}}))
    env = load_env(tmp_path, {"ACR_DEPLOY_RESOURCE_GROUP": "from-env"})
    assert env["ACR_DEPLOY_RESOURCE_GROUP"] == "from-env" and env["ACR_DEPLOY_SUBSCRIPTION_ID"] == "sub-file"
    assert "Ignored" not in env
    s = load_settings(tmp_path, {})
    assert (s.resource_group, s.discovery_ttl_seconds) == ("from-file", 5.0)
    assert load_env(tmp_path / "nowhere", {"A": "1"}) == {"A": "1"}
    (tmp_path / "local.settings.json").write_text("{not json")
    with pytest.raises(ValueError, match="local.settings.json"):
        load_settings(tmp_path, {})


def test_broken_local_settings_is_a_clear_cli_error(workdir, capsys):
    (workdir / "local.settings.json").write_text("{not json")
    code, _, err = run(capsys, "rules", "check")
    assert code == 2 and "local.settings.json" in err


@pytest.mark.skipif(shutil.which("acr-deploy") is None and not (Path(sys.executable).parent / "acr-deploy").exists(),
                    reason="console script not installed")
def test_the_console_script_runs(workdir):
    exe = shutil.which("acr-deploy") or str(Path(sys.executable).parent / "acr-deploy")
    (workdir / "rules.yaml").write_text(GOOD)
    proc = subprocess.run([exe, "rules", "check", "--file", "rules.yaml"], capture_output=True, text=True,
                          timeout=60, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "OK, 2 rules" in proc.stdout
