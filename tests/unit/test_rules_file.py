"""The rules file: what loads, and how a broken one fails (file, line, rule, field; every problem)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.model import CheckMode, RolloutSettings, SmokeCheck, Strategy
from shared.domain.rules import RulesError, load_rules_file, parse_rules, plan
from shared.domain.rules.policies import GlobPolicy, RegexPolicy, SemverPolicy
from tests.unit.rules_support import SUB, push

ROOT = Path(__file__).resolve().parents[2]

HEAD = f"""
defaults:
  subscription: {SUB}
  resource_group: apps
rules:
"""


def parse(body: str, **kw):
    return parse_rules(HEAD + textwrap.dedent(body), "rules.yaml", **kw)


def problems(body: str, head: str = HEAD) -> list:
    with pytest.raises(RulesError) as info:
        parse_rules(head + textwrap.dedent(body), "rules.yaml")
    return info.value.problems


def only(body: str):
    found = problems(body)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def test_a_minimal_rule_defaults_to_semver_releases():
    rf = parse("""
      - name: orders
        repository: orders-api
        targets: [{app: orders-api}]
    """)
    (rule,) = rf.rules
    assert isinstance(rule.policy, SemverPolicy) and rule.policy.prereleases == "no"
    t = rule.targets[0]
    assert (t.subscription, t.resource_group, t.app, t.container) == (SUB, "apps", "orders-api", None)
    assert rule.rollout.strategy is Strategy.ALL_AT_ONCE and rule.rollout.steps == (100,)


def test_policies_in_long_and_short_form():
    rf = parse(r"""
      - name: a
        repository: a
        tags: {semver: ">=1.2 <2", prereleases: true}
        targets: [{app: aa}]
      - name: b
        repository: b
        tags: {regex: '^main-(?P<build>\d+)-', sort_by: {group: build, order: alphabetical}}
        targets: [{app: bb}]
      - name: c
        repository: c
        tags: "glob:pr-*"
        targets: [{app: "pr-{group:1}"}]
      - name: d
        repository: d
        tags: {semver: null, prereleases: only}
        targets: [{app: dd}]
    """)
    a, b, c, d = rf.rules
    assert a.policy == SemverPolicy(">=1.2 <2", "yes")
    assert isinstance(b.policy, RegexPolicy) and (b.policy.sort_group, b.policy.order) == ("build", "alphabetical")
    assert isinstance(c.policy, GlobPolicy)
    assert d.policy.prereleases == "only"


def test_rollout_and_checks_become_model_settings():
    rf = parse("""
      - name: orders
        repository: orders-api
        targets: [{app: orders-api}]
        rollout: {strategy: canary, steps: [5, 25, 100], bake: 2m, ready_timeout: 90s, deadline: 1h,
                  keep_previous: 2, allow_single_mode_switch: true}
        smoke:
          - {path: /healthz, expect_status: [200, 204], timeout: 1500ms, retries: 2, backoff: 0.5}
        verify:
          - name: api
            method: head
            path: /v1
            json: {field: build.version, equals: 3}
            headers: {Accept: application/json}
            max_latency_ms: 250
            consecutive_passes: 3
    """)
    r = rf.rules[0].rollout
    assert r.strategy is Strategy.CANARY and r.steps == (5, 25, 100)
    assert (r.bake_s, r.ready_timeout_s, r.deadline_s, r.keep_previous) == (120.0, 90.0, 3600.0, 2)
    assert r.allow_single_mode_switch is True
    assert r.smoke == (SmokeCheck(name="smoke-1", path="/healthz", expect_status=(200, 204), timeout_s=1.5,
                                  retries=2, backoff_s=0.5),)
    v = r.verify[0]
    assert (v.name, v.method, v.json_field, v.json_equals, v.headers) == (
        "api", "HEAD", "build.version", 3, (("Accept", "application/json"),))
    assert v.max_latency_ms == 250 and v.consecutive_passes == 3
    assert (r.warmup_s, r.checks) == (45.0, CheckMode.AUTO)  # the defaults: sized for 30 s cold starts
    # The rollout reads it back from a stored deployment: the round trip keeps everything.
    assert RolloutSettings.from_dict(r.to_dict()) == r


def test_warmup_and_checks_in_a_rule_and_in_the_defaults():
    rf = parse_rules(HEAD.replace("rules:", "  rollout: {warmup: 1m}\nrules:") + textwrap.dedent("""
      - {name: a, repository: a, targets: [{app: aa}]}
      - {name: b, repository: b, targets: [{app: bb}], rollout: {warmup: 0s, checks: none}}
    """), "rules.yaml")
    a, b = (r.rollout for r in rf.rules)
    assert (a.warmup_s, a.checks, b.warmup_s, b.checks) == (60.0, CheckMode.AUTO, 0.0, CheckMode.NONE)
    assert RolloutSettings.from_dict(b.to_dict()) == b  # stored with every deployment


def test_canary_without_steps_gets_the_default_steps_and_smoke_can_be_off():
    rf = parse("""
      - name: orders
        repository: orders-api
        targets: [{app: orders-api}]
        rollout: {strategy: canary}
        smoke: []
    """)
    assert rf.rules[0].rollout.steps == (10, 50, 100)
    assert rf.rules[0].rollout.smoke == ()


def test_defaults_merge_into_rules_and_rules_win():
    head = f"""
defaults:
  subscription: {SUB}
  resource_group: apps
  environment: prod
  ignore: [latest]
  rollout: {{strategy: canary, bake: 1m}}
  smoke: [{{path: /ready}}]
rules:
"""
    rf = parse_rules(head + textwrap.dedent("""
      - name: a
        repository: a
        ignore: ["*-debug"]
        targets: [{app: aa, resource_group: other}]
        rollout: {bake: 10s}
      - name: b
        repository: b
        environment: staging
        targets: [{app: bb}]
        smoke: [{path: /b}]
    """), "rules.yaml")
    a, b = rf.rules
    assert a.ignore == ("latest", "*-debug") and a.environment == "prod"
    assert a.rollout.strategy is Strategy.CANARY and a.rollout.bake_s == 10.0
    assert a.rollout.smoke[0].path == "/ready" and a.targets[0].resource_group == "other"
    assert b.environment == "staging" and b.rollout.smoke[0].path == "/b" and b.rollout.bake_s == 60.0
    assert rf.defaults_rollout.smoke[0].path == "/ready"  # what resource-tag rules inherit


def test_settings_supply_subscription_and_resource_group():
    rf = parse_rules("rules:\n  - {repository: a, targets: [{app: aa}]}\n", "r.yaml",
                     subscription="sub-1", resource_group="rg-1")
    assert rf.rules[0].targets[0].subscription == "sub-1"
    assert rf.rules[0].name == "rule-1"


def test_missing_subscription_names_every_place_it_could_come_from():
    found = problems("", head="rules:\n  - {repository: a, targets: [{app: aa}]}\n")
    fields = {p.field: p.message for p in found}
    assert "ACR_DEPLOY_SUBSCRIPTION_ID" in fields["targets[0].subscription"]
    assert "ACR_DEPLOY_RESOURCE_GROUP" in fields["targets[0].resource_group"]
    assert all(p.rule == "#1" for p in found)


def test_a_problem_names_file_line_rule_and_field():
    p = only("""
      - name: ok
        repository: a
        targets: [{app: aa}]
      - name: orders
        repository: orders-api
        tags: {semver: ">=1.2 <"}
        targets: [{app: orders-api}]
    """)
    assert (p.file, p.rule, p.field) == ("rules.yaml", "orders", "tags.semver")
    assert p.line == 12  # the `tags:` mapping of rule #2
    assert str(p).startswith("rules.yaml:12: rule orders: tags.semver: ")
    assert "'<' needs a version" in p.message


def test_every_problem_is_reported_not_just_the_first():
    found = problems("""
      - name: one
        repository: Orders_API
        targets: [{app: Orders}]
      - repository: two
        tags: {semver: 1.2}
        targets: [{app: two}]
        rollout: {strategy: canary, steps: [50, 20, 100]}
      - name: three
        repository: three
        targets: []
        smoke: [{path: health, retries: -1}]
    """)
    got = {(p.rule, p.field) for p in found}
    assert got >= {
        ("one", "repository"), ("one", "targets[0].app"),
        ("#2", "tags.semver"), ("#2", "rollout.steps"),
        ("three", "targets"), ("three", "smoke[0].path"), ("three", "smoke[0].retries"),
    }
    with pytest.raises(RulesError) as info:
        parse(textwrap.dedent("""
          - name: one
            repository: Orders_API
            targets: [{app: aa}]
        """))
    assert "1 problem in the rules" in str(info.value) and "rule one: repository" in str(info.value)


def test_unknown_keys_are_errors_with_a_suggestion():
    p = only("""
      - name: orders
        repository: orders-api
        targets: [{app: orders-api}]
        rolout: {strategy: canary}
    """)
    assert p.field == "rolout" and "did you mean 'rollout'" in p.message
    p = only("""
      - name: orders
        repository: orders-api
        targets: [{app: orders-api, resourceGroup: x}]
    """)
    assert p.field == "targets[0].resourceGroup" and "resource_group" in p.message
    found = problems("", head="rules: []\ndefualts: {}\n")
    assert found[0].rule is None and found[0].field == "defualts"


def test_duplicate_yaml_keys_and_syntax_errors_name_the_line():
    with pytest.raises(RulesError) as info:
        parse_rules("rules:\n  - name: a\n    name: b\n", "r.yaml")
    assert "duplicate key 'name'" in info.value.message and info.value.problems[0].line == 3
    with pytest.raises(RulesError) as info:
        parse_rules("rules:\n  - name: [a\n", "r.yaml")
    assert "not valid YAML" in info.value.message and info.value.problems[0].line
    with pytest.raises(RulesError, match="empty"):
        parse_rules("", "r.yaml")
    with pytest.raises(RulesError, match="rules: is required"):
        parse_rules("defaults: {}\n", "r.yaml")


@pytest.mark.parametrize(
    "body, field, message",
    [
        ("tags: {semver: '1', regex: 'x'}", "tags", "exactly one"),
        ("tags: {glob: 'x', prereleases: true}", "tags.prereleases", "semver only"),
        ("tags: {semver: '*', sort_by: build}", "tags.sort_by", "regex only"),
        ("tags: {regex: '^(x'}", "tags.regex", "invalid regular expression"),
        (r"tags: {regex: '^m-(?P<b>\d+)', sort_by: {group: build}}", "tags.regex", "not a group"),
        ("tags: {regex: 'x', sort_by: {group: 1, order: random}}", "tags.sort_by.order", "numerical or alphabetical"),
        ("tags: {semver: '*', prereleases: maybe}", "tags.prereleases", "true, false or only"),
        ("tags: 'calver'", "tags", "not a tag policy"),
        ("rollout: {steps: [10, 100]}", "rollout.steps", "strategy: canary"),
        ("rollout: {strategy: canary, steps: [10, 90]}", "rollout.steps", "end at 100"),
        ("rollout: {strategy: canary, steps: [0, 100]}", "rollout.steps[0]", "between 1 and 100"),
        ("rollout: {strategy: canary, steps: [100]}", "rollout.steps", "at least one step"),
        ("rollout: {strategy: red-black}", "rollout.strategy", "all-at-once, canary or blue-green"),
        ("rollout: {strategy: blue-green, label: Green}", "rollout.label", "not a label name"),
        ("rollout: {strategy: blue-green, production_label: 9prod}", "rollout.production_label", "not a label name"),
        ("rollout: {strategy: blue-green, label: blue}", "rollout.label", "must differ"),
        ("rollout: {bake: soon}", "rollout.bake", "not a duration"),
        ("rollout: {ready_timeout: 0}", "rollout.ready_timeout", "> 0"),
        ("rollout: {deadline: 1m, ready_timeout: 5m}", "rollout.deadline", "shorter than"),
        ("rollout: {keep_previous: 11}", "rollout.keep_previous", "between 0 and 10"),
        ("rollout: {warmup: soon}", "rollout.warmup", "not a duration"),
        ("rollout: {checks: off}", "rollout.checks", "auto, http or none"),
        ("rollout: {allow_single_mode_switch: 'yes'}", "rollout.allow_single_mode_switch", "true or false"),
        ("smoke: [{path: 'http://evil.example/x'}]", "smoke[0].path", "starting with '/'"),
        ("smoke: [{path: '//evil.example/x'}]", "smoke[0].path", "starting with '/'"),
        ("smoke: [{expect_status: 700}]", "smoke[0].expect_status", "between 100 and 599"),
        ("smoke: [{method: FETCH}]", "smoke[0].method", "not an HTTP method"),
        ("smoke: [{timeout: 0s}]", "smoke[0].timeout", "> 0"),
        ("smoke: [{json: {field: status}}]", "smoke[0].json.equals", "is required"),
        ("smoke: [{headers: {Authorization: 'Bearer x'}}]", "smoke[0].headers.Authorization", "credential"),
        ("smoke: [{headers: {X-Api-Key: k}}]", "smoke[0].headers.X-Api-Key", "credential"),
        ("smoke: [{name: a}, {name: a}]", "smoke[1].name", "duplicate"),
        ("verify: {path: /}", "verify", "list of checks"),
        ("allow_downgrade: 'no'", "allow_downgrade", "true or false"),
        ("enabled: 1", "enabled", "true or false"),
        ("environment: 3", "environment", "must be text"),
        ("ignore: [3]", "ignore[0]", "quote it"),
        ("name: convention", "name", "reserved"),
    ],
)
def test_field_validation(body, field, message):
    p = only(f"""
      - name: r
        repository: r
        targets: [{{app: rr}}]
        {body}
    """.replace("- name: r\n        repository: r", "- repository: r", 1) if body.startswith("name:") else f"""
      - name: r
        repository: r
        targets: [{{app: rr}}]
        {body}
    """)
    assert p.field == field, str(p)
    assert message in p.message, str(p)


@pytest.mark.parametrize(
    "target, field, message",
    [
        ("{app: Orders}", "targets[0].app", "Container App names"),
        ("{app: a--b}", "targets[0].app", "Container App names"),
        ("{app: 'pr_{tag}'}", "targets[0].app", "outside placeholders"),
        ("{app: 'pr-{branch}'}", "targets[0].app", "unknown placeholder"),
        ("{app: 'pr-{group:pr}'}", "targets[0].app", "no group 'pr'"),
        ("{app: aa, container: Side_Car}", "targets[0].container", "container names"),
        ("{app: aa, resource_group: 'bad/rg'}", "targets[0].resource_group", "resource group"),
        ("{app: aa, subscription: 'x y'}", "targets[0].subscription", "subscription"),
        ("{container: c}", "targets[0].app", "is required"),
        ("[a]", "targets[0]", "mapping"),
    ],
)
def test_target_validation(target, field, message):
    p = only(f"""
      - name: r
        repository: r
        targets: [{target}]
    """)
    assert p.field == field and message in p.message, str(p)


def test_duplicate_rule_names_and_disabled_rules():
    p = only("""
      - {name: a, repository: a, targets: [{app: aa}]}
      - {name: a, repository: b, targets: [{app: bb}]}
    """)
    assert p.field == "name" and "rule #1" in p.message
    rf = parse("""
      - {name: a, repository: a, targets: [{app: aa}]}
      - {name: b, repository: b, targets: [{app: bb}], enabled: false}
    """)
    assert [r.name for r in rf.rules] == ["a"] and rf.disabled == ("b",)


def test_registries_are_validated_and_kept_in_setting_format():
    rid = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg"
    rf = parse_rules(f"registries: [MyReg.azurecr.io, 'other.azurecr.io={rid}', 'localhost:5000']\nrules: []\n", "r.yaml")
    assert rf.registries == ("myreg.azurecr.io", f"other.azurecr.io={rid}", "localhost:5000")
    with pytest.raises(RulesError) as info:
        parse_rules("registries: ['https://x.io', 'a.io=/subscriptions/x']\nrules: []\n", "r.yaml")
    assert [p.field for p in info.value.problems] == ["registries[0]", "registries[1]"]


def test_repository_patterns_exact_glob_and_registry_qualified():
    rf = parse("""
      - name: any-registry
        repository: [orders-*, team/api]
        targets: [{app: "{name}"}]
      - name: one-registry
        repository: other.azurecr.io/billing
        targets: [{app: billing}]
    """)
    result = plan(push("orders-api", "1.0.0"), rf.rules)
    assert [d.target.app for d in result.deployments] == ["orders-api"]
    assert plan(push("team/api", "1.0.0"), rf.rules).deployments[0].target.app == "api"
    assert not plan(push("billing", "1.0.0"), rf.rules).deployments
    other = plan(push("billing", "1.0.0", registry="Other.azurecr.io"), rf.rules)
    assert [d.target.app for d in other.deployments] == ["billing"]


def test_durations():
    rf = parse("""
      - name: r
        repository: r
        targets: [{app: rr}]
        rollout: {strategy: canary, bake: 1h30m, ready_timeout: 45, deadline: 500ms}
    """.replace("deadline: 500ms", "deadline: 5h"))
    assert rf.rules[0].rollout.bake_s == 5400 and rf.rules[0].rollout.ready_timeout_s == 45


def test_files_missing_or_unreadable_are_rules_errors(tmp_path):
    with pytest.raises(RulesError, match="file not found") as info:
        load_rules_file(tmp_path / "nope.yaml")
    assert info.value.file.endswith("nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe rules")
    with pytest.raises(RulesError, match="cannot read"):
        load_rules_file(bad)


def test_the_example_file_is_valid_and_shows_every_feature():
    rf = load_rules_file(ROOT / "rules.example.yaml")
    kinds = {type(r.policy).__name__ for r in rf.rules}
    assert kinds == {"SemverPolicy", "RegexPolicy", "GlobPolicy"}
    assert any(r.rollout.strategy is Strategy.CANARY and r.rollout.verify for r in rf.rules)
    assert any(len(r.targets) > 1 and r.targets[0].container for r in rf.rules)
    assert any("{group:" in t.app for r in rf.rules for t in r.targets)
    assert any(isinstance(r.policy, RegexPolicy) and r.policy.sort_group for r in rf.rules)
    assert any(isinstance(r.policy, SemverPolicy) and r.policy.prereleases != "no" for r in rf.rules)
    assert rf.registries and rf.disabled


def test_shapes_that_are_not_rules():
    for text, message in [("[1, 2]", "the file must be a mapping"), ("rules: {a: 1}", "must be a list of rules"),
                          ("rules:\n  - \n", "a rule must be a mapping"),
                          ("rules:\n  - {repository: aa, targets: [{app: aa}], smoke: [null]}\n", "smoke[0]: must be a mapping")]:
        with pytest.raises(RulesError) as info:
            parse_rules(text, "r.yaml", subscription=SUB, resource_group="apps")
        assert message in str(info.value), str(info.value)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 200), st.floats(allow_nan=False, width=16),
                     st.text(max_size=12), st.sampled_from(["1.x", "^1", "canary", "/x", "30s", "aa", "{tag}"]))
_keys = st.sampled_from(["name", "repository", "tags", "targets", "app", "rollout", "steps", "smoke", "verify",
                         "semver", "regex", "glob", "ignore", "path", "json", "headers", "defaults", "rules",
                         "strategy", "bake", "sort_by", "group", "order", "prereleases", "registries", "x"])
_docs = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(_keys, inner, max_size=5)), max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(_docs)
def test_any_document_loads_or_fails_with_rules_error_only(doc):
    text = yaml.safe_dump({"rules": doc} if not isinstance(doc, dict) else doc)
    try:
        parse_rules(text, "fuzz.yaml", subscription=SUB, resource_group="apps")
    except RulesError as exc:
        assert exc.problems and all(p.file == "fuzz.yaml" and p.message for p in exc.problems)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_loads_or_fails_with_rules_error_only(text):
    try:
        parse_rules(text, "fuzz.yaml")
    except RulesError as exc:
        assert exc.problems
