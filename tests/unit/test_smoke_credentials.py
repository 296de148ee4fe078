"""Smoke-check credentials never reach the history: the rules loader refuses them (headers and
query parameters, in rules and in the defaults resource-tag rules inherit) and a deployment record
masks any that got into settings some other way."""

from __future__ import annotations

import textwrap

import pytest

from shared.domain.credentials import REDACTED, credential_params, is_credential_header, redact_path
from shared.domain.model import RolloutSettings, SmokeCheck
from shared.domain.rules import RulesError, parse_rules
from tests.unit.rules_support import SUB

HEAD = f"""
defaults:
  subscription: {SUB}
  resource_group: apps
rules:
  - name: r
    repository: r
    targets: [{{app: rr}}]
"""


def problem_of(check: str, head: str = HEAD, where: str = "    ") -> str:
    with pytest.raises(RulesError) as info:
        parse_rules(head + where + check + "\n", "rules.yaml")
    (problem,) = info.value.problems
    return str(problem)


@pytest.mark.parametrize("header", ["Ocp-Apim-Subscription-Key", "X-Functions-Key", "X-Auth", "Authorization",
                                    "x-api-key", "X-Auth-Token", "Cookie", "Proxy-Authorization"])
def test_credential_headers_are_refused_naming_the_rule_and_field(header):
    text = problem_of(f"smoke: [{{headers: {{{header}: 'v'}}}}]")
    assert f"smoke[0].headers.{header}" in text and "credential" in text and "rule r:" in text


@pytest.mark.parametrize("path, name", [
    ("/health?code=abc", "code"), ("/health?sig=abc", "sig"), ("/h?sv=2022-11-02&se=x&sig=abc%3D", "sig"),
    ("/h?key=1", "key"), ("/h?token=1", "token"), ("/h?access_token=1", "access_token"),
    ("/h?api-key=1", "api-key"), ("/h?apikey=1", "apikey"), ("/h?password=1", "password"),
    ("/h?secret=1", "secret"), ("/h?signature=1", "signature"), ("/h?x=1&%63ode=2", "code"),
    ("/h?CODE=2", "code"), ("/h?a=1;sig=2", "sig"),
])
def test_credential_query_parameters_in_a_path_are_refused(path, name):
    text = problem_of(f"verify: [{{path: '{path}'}}]")
    assert "verify[0].path" in text and name in text and "credential" in text


def test_defaults_that_resource_tag_rules_inherit_are_checked_too():
    head = f"""
defaults:
  subscription: {SUB}
  resource_group: apps
  smoke: [{{path: '/ready?code=k'}}]
rules:
  - name: r
    repository: r
    targets: [{{app: rr}}]
"""
    with pytest.raises(RulesError) as info:
        parse_rules(head, "rules.yaml")
    assert any("defaults.smoke[0].path" in str(p) or "smoke[0].path" in str(p) for p in info.value.problems)


@pytest.mark.parametrize("path", ["/health", "/health?verbose=1&format=json", "/code/sig?page=2", "/"])
def test_ordinary_paths_and_headers_still_load(path):
    rules = parse_rules(HEAD + f"    smoke: [{{path: '{path}', headers: {{Accept: application/json, "
                                 f"X-Request-Id: t}}}}]\n", "rules.yaml")
    assert rules.rules[0].rollout.smoke[0].path == path
    assert not is_credential_header("Accept") and not credential_params(path)


def test_a_record_masks_credentials_that_got_past_the_loader():
    settings = RolloutSettings(
        smoke=(SmokeCheck(path="/h?x=1&code=hunter2", headers=(("X-Functions-Key", "hunter2"), ("Accept", "a"))),),
        verify=(SmokeCheck(path="/v?sv=1&sig=hunter2"),),
    )
    data = settings.to_dict()
    assert "hunter2" not in repr(data)
    assert data["smoke"][0]["path"] == f"/h?x=1&code={REDACTED}"
    assert data["smoke"][0]["headers"] == [["X-Functions-Key", REDACTED], ["Accept", "a"]]
    assert RolloutSettings.from_dict(data).verify[0].path == f"/v?sv=1&sig={REDACTED}"
    assert redact_path("/plain?q=1") == "/plain?q=1"
