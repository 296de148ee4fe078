"""Target templates and name hygiene: a hostile tag never yields an invalid Container App name."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.model import ImagePush
from shared.domain.rules.planning import RepositoryPattern, Rule, TargetTemplate, plan
from shared.domain.rules.policies import GlobPolicy, RegexPolicy
from shared.domain.rules.target_names import (
    TemplateError,
    check_template,
    is_valid_app_name,
    sanitize_name,
)
from tests.unit.rules_support import push

TAGS = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")
# What the service accepts (docs: Container Apps naming), written out independently of the code.
VALID_APP = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")


def _rule(app_template: str, policy=None) -> Rule:
    return Rule(
        name="preview",
        repositories=(RepositoryPattern("*"),),
        policy=policy or GlobPolicy("*"),
        targets=(TargetTemplate("sub", "rg", app_template),),
    )


@settings(max_examples=300)
@given(TAGS, st.sampled_from(["pr-{tag}", "{tag}", "{group:1}", "x-{tag}-{name}", "{name}-{tag}-preview"]))
def test_any_valid_tag_gives_a_valid_app_name_or_a_clear_non_match(tag, template):
    result = plan(push("web-frontend", tag), [_rule(template)])
    if result.deployments:
        app = result.deployments[0].target.app
        assert VALID_APP.match(app) and "--" not in app, app
    else:
        decision = result.decisions[0]
        assert not decision.matched and "no valid Container App name" in decision.reason


@settings(max_examples=200)
@given(TAGS)
def test_regex_group_templates_are_sanitized_too(tag):
    rule = _rule("pr-{group:pr}", RegexPolicy(r"^(?P<pr>.*)$"))
    result = plan(push("web", tag), [rule])
    assert result.deployments, result.decisions
    app = result.deployments[0].target.app
    assert VALID_APP.match(app) and "--" not in app


def test_sanitizing_examples():
    assert sanitize_name("pr-Feature_X") == "pr-feature-x"
    assert sanitize_name("pr--42") == "pr-42"
    assert sanitize_name("123-abc") == "abc"
    assert sanitize_name("---") is None
    assert sanitize_name("a") is None  # 2 characters at least
    assert sanitize_name("ab-") == "ab"


def test_overlong_names_are_cut_with_a_hash_so_two_long_tags_stay_apart():
    a = sanitize_name("preview-" + "a" * 60 + "-one")
    b = sanitize_name("preview-" + "a" * 60 + "-two")
    assert a and b and a != b
    assert len(a) == 32 and is_valid_app_name(a) and is_valid_app_name(b)


def test_a_tag_that_leaves_nothing_is_a_clear_non_match():
    result = plan(push("web", "1234"), [_rule("{tag}")])
    assert not result.deployments
    assert "'1234'" in result.decisions[0].reason


def test_sanitized_names_are_reported():
    result = plan(push("web", "PR_42"), [_rule("pr-{tag}")])
    assert result.deployments[0].target.app == "pr-pr-42"
    assert "sanitized to 'pr-pr-42'" in result.decisions[0].reason


@pytest.mark.parametrize(
    "template, groups, message",
    [
        ("pr-{group:pr}", frozenset({"1"}), "no group 'pr'"),
        ("{branch}", frozenset(), "unknown placeholder"),
        ("pr-{tag", frozenset(), "unbalanced"),
    ],
)
def test_template_errors(template, groups, message):
    with pytest.raises(TemplateError, match=message):
        check_template(template, groups)


def test_known_placeholders_pass_and_an_undeclared_group_does_not():
    check_template("{registry}{repository}{name}{tag}{group:pr}", frozenset({"pr"}))  # no error
    with pytest.raises(TemplateError):
        check_template("{registry}{repository}{name}{tag}{group:pr}", frozenset())


@pytest.mark.parametrize(
    "name, ok",
    [("orders-api", True), ("a1", True), ("a", False), ("1abc", False), ("abc-", False),
     ("a--b", False), ("Orders", False), ("a" * 32, True), ("a" * 33, False), ("a_b", False)],
)
def test_app_name_rules(name, ok):
    assert is_valid_app_name(name) is ok


def test_push_helper_builds_a_real_push():
    p = push("team/web", "1.0.0")
    assert isinstance(p, ImagePush) and p.image.startswith("myreg.azurecr.io/team/web@sha256:")
