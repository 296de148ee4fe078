"""Planning: fan-out, ignore lists, dedupe, the zero-config convention and resource-tag rules."""

from __future__ import annotations

import textwrap

from shared.domain.rules import (
    convention_rule,
    parse_rules,
    plan,
    tag_rule_problems,
    tag_rules_from_apps,
)
from shared.domain.rules.versions import is_newer_version
from tests.unit.rules_support import SUB, app, push


def rules(body: str):
    head = f"defaults: {{subscription: {SUB}, resource_group: apps}}\nrules:\n"
    return parse_rules(head + textwrap.dedent(body), "rules.yaml").rules


def test_one_push_fans_out_to_several_rules_and_targets():
    rs = rules("""
      - name: prod
        repository: orders-api
        environment: production
        targets: [{app: orders-api}, {app: orders-api-weu, resource_group: weu}]
      - name: sidecar
        repository: orders-api
        targets: [{app: metrics, container: orders}]
    """)
    result = plan(push("orders-api", "1.4.2"), rs)
    got = [(d.rule, d.target.resource_group, d.target.app, d.target.container, d.environment) for d in result.deployments]
    assert got == [
        ("prod", "apps", "orders-api", None, "production"),
        ("prod", "weu", "orders-api-weu", None, "production"),
        ("sidecar", "apps", "metrics", "orders", ""),
    ]
    assert len({d.deployment_id for d in result.deployments}) == 3
    assert all(d.version_key == result.deployments[0].version_key != "" for d in result.deployments)
    assert result.reason() == "planned for metrics, orders-api, orders-api-weu"


def test_the_same_target_is_planned_once_and_the_decision_says_by_whom():
    rs = rules("""
      - {name: first, repository: orders-api, targets: [{app: orders-api}]}
      - {name: second, repository: "orders-*", targets: [{app: orders-api}]}
    """)
    result = plan(push("orders-api", "1.0.0"), rs)
    assert [d.rule for d in result.deployments] == ["first"]
    second = result.decisions[1]
    assert not second.matched and "already planned by rule 'first'" in second.reason


def test_ignore_list_wins_over_the_policy():
    rs = rules("""
      - name: all
        repository: web
        tags: "glob:*"
        ignore: [latest, "*-debug"]
        targets: [{app: web}]
    """)
    assert plan(push("web", "main"), rs).deployments
    for tag in ("latest", "1.0-debug"):
        result = plan(push("web", tag), rs)
        assert not result.deployments
        assert "is ignored" in result.decisions[0].reason


def test_nothing_matched_gives_a_reason_for_the_ignore_record():
    rs = rules("""
      - {name: prod, repository: orders-api, targets: [{app: orders-api}]}
      - {name: other, repository: billing, targets: [{app: billing}]}
    """)
    result = plan(push("orders-api", "latest"), rs)
    assert not result.matched
    assert result.reason() == "no rule matched: prod: tag 'latest' is not a semver version (MAJOR.MINOR.PATCH)"
    assert plan(push("unknown", "1.0.0"), rs).reason() == "no rule covers repository 'unknown'"
    assert plan(push("x", "1.0.0"), []).reason() == "no rules configured"
    assert len(plan(push("orders-api", "latest"), rs * 50).reason(limit=100)) == 100


def test_templating_preview_apps_from_regex_groups():
    rs = rules(r"""
      - name: previews
        repository: web
        tags: {regex: '^pr-(?P<pr>\d+)$'}
        targets: [{app: "pr-{group:pr}-{name}", resource_group: previews}]
    """)
    result = plan(push("team/web", "pr-42"), rs)
    assert not result.deployments  # 'team/web' is not 'web'
    result = plan(push("web", "pr-42"), rs)
    assert result.deployments[0].target.app == "pr-42-web"
    assert result.deployments[0].version_key == ""


def test_semver_versions_order_through_the_plan():
    rs = rules("""
      - {name: prod, repository: orders-api, targets: [{app: orders-api}]}
    """)
    key = lambda tag: plan(push("orders-api", tag), rs).deployments[0].version_key  # noqa: E731
    assert is_newer_version(key("1.10.0"), key("1.9.0"))
    assert not is_newer_version(key("1.4.1"), key("1.4.2"))  # late-arriving older version: intake skips it
    assert key("v1.4.2") == key("1.4.2")


def test_allow_downgrade_is_carried_to_the_plan():
    rs = rules("""
      - {name: p, repository: web, allow_downgrade: true, targets: [{app: web}]}
    """)
    assert plan(push("web", "1.0.0"), rs).deployments[0].allow_downgrade is True


# --------------------------------------------------------------------------- convention


def test_zero_config_convention():
    rule = convention_rule(SUB, "apps")
    result = plan(push("team/orders-api", "1.4.2"), [rule])
    (d,) = result.deployments
    assert (d.target.subscription_id, d.target.resource_group, d.target.app) == (SUB, "apps", "orders-api")
    assert (d.rule, d.source) == ("convention", "convention")
    for tag in ("latest", "1.5.0-rc.1", "main-123", "1.4"):
        assert not plan(push("orders-api", tag), [rule]).deployments, tag


def test_convention_never_guesses_an_app_name():
    result = plan(push("orders_api", "1.0.0"), [convention_rule(SUB, "apps")])
    assert not result.deployments
    assert "'orders_api' is not a valid Container App name" in result.decisions[0].reason


# --------------------------------------------------------------------------- resource tags


def test_rules_from_resource_tags():
    apps = [
        app("orders-api", {"acr-deploy.repository": "orders-api", "acr-deploy.tags": "semver:>=1.2 <2"}),
        app("web-preview", {"ACR-Deploy.Repository": "myreg.azurecr.io/web", "acr-deploy.tags": "glob:pr-*",
                            "acr-deploy.environment": "preview"}),
        app("untagged", {"owner": "team-a"}),
    ]
    rs = tag_rules_from_apps(apps)
    assert [r.name for r in rs] == ["tags:orders-api", "tags:web-preview"]
    d = plan(push("orders-api", "1.4.2"), rs).deployments
    assert [(x.target.app, x.source, x.rule) for x in d] == [("orders-api", "tags", "tags:orders-api")]
    assert not plan(push("orders-api", "2.0.0"), rs).deployments
    web = plan(push("web", "pr-7"), rs).deployments
    assert [(x.target.app, x.environment) for x in web] == [("web-preview", "preview")]
    assert not plan(push("web", "pr-7", registry="other.azurecr.io"), rs).deployments


def test_a_repository_tag_without_a_policy_means_semver_releases():
    (rule,) = tag_rules_from_apps([app("orders-api", {"acr-deploy.repository": "orders-api"})])
    assert plan(push("orders-api", "1.0.0"), [rule]).deployments
    assert not plan(push("orders-api", "1.0.0-rc.1"), [rule]).deployments


def test_invalid_resource_tags_are_reported_and_never_deploy():
    apps = [
        app("bad-policy", {"acr-deploy.repository": "orders-api", "acr-deploy.tags": "semver:>=banana"}),
        app("bad-repo", {"acr-deploy.repository": "Orders API"}),
        app("two-containers", {"acr-deploy.repository": "orders-api"},
            images={"web": "myreg.azurecr.io/web:1", "sidecar": "myreg.azurecr.io/envoy:1"}),
    ]
    rs = tag_rules_from_apps(apps)
    problems = tag_rule_problems(rs)
    assert len(problems) == 3
    assert any("bad-policy" in p and "acr-deploy.tags" in p for p in problems)
    assert any("bad-repo" in p and "not a repository name" in p for p in problems)
    assert any("two-containers" in p and "acr-deploy.container" in p for p in problems)
    result = plan(push("orders-api", "1.0.0"), rs)
    assert not result.deployments
    assert any("tag policy is invalid" in d.reason for d in result.decisions)


def test_multi_container_apps_pick_the_container_running_the_repository():
    images = {"api": "myreg.azurecr.io/orders-api:1.0.0", "proxy": "myreg.azurecr.io/envoy@sha256:" + "a" * 64}
    rs = tag_rules_from_apps([app("orders", {"acr-deploy.repository": "orders-api"}, images=images)])
    assert plan(push("orders-api", "1.1.0"), rs).deployments[0].target.container == "api"
    explicit = tag_rules_from_apps(
        [app("orders", {"acr-deploy.repository": "envoy", "acr-deploy.container": "proxy"}, images=images)]
    )
    assert plan(push("envoy", "1.1.0"), explicit).deployments[0].target.container == "proxy"


def test_tag_rules_are_ordered_whatever_the_listing_order():
    a = app("aa", {"acr-deploy.repository": "x"}, rg="rg2")
    b = app("bb", {"acr-deploy.repository": "x"}, rg="rg1")
    assert [r.name for r in tag_rules_from_apps([a, b])] == [r.name for r in tag_rules_from_apps([b, a])]


def test_resource_tag_regexes_with_nested_quantifiers_are_refused():
    (rule,) = tag_rules_from_apps([app("web", {"acr-deploy.repository": "web", "acr-deploy.tags": "regex:^(a+)+$"})])
    assert "nested quantifiers" in tag_rule_problems([rule])[0]
    assert not plan(push("web", "a" * 40 + "!"), [rule]).deployments  # answered at once, no backtracking
    (fine,) = tag_rules_from_apps([app("web", {"acr-deploy.repository": "web",
                                               "acr-deploy.tags": r"regex:^main-(?P<build>\d+)-"})])
    assert not tag_rule_problems([fine])


def test_decisions_say_where_each_rule_stopped():
    rs = rules(r"""
      - {name: other, repository: billing, targets: [{app: billing}]}
      - {name: ignored, repository: web, tags: "glob:*", ignore: [latest], targets: [{app: web}]}
      - {name: semver, repository: web, targets: [{app: web}]}
      - {name: template, repository: web, tags: "glob:*", targets: [{app: "{tag}"}]}
    """)
    result = plan(push("web", "latest"), rs)
    assert [(d.rule, d.stage) for d in result.decisions] == [
        ("other", "repository"), ("ignored", "ignore"), ("semver", "tag"), ("template", "planned")]
    result = plan(push("web", "1234"), rs)
    assert [d.stage for d in result.decisions] == ["repository", "planned", "tag", "target"]
    assert result.decisions[1].to_dict()["stage"] == "planned"
    result = plan(push("web", "web"), rs)
    assert [d.stage for d in result.decisions][1:] == ["planned", "tag", "duplicate"]


def test_acr_deploy_tags_without_a_repository_tag_are_reported():
    rs = tag_rules_from_apps([app("web", {"acr-deploy.tags": "semver"}), app("other", {"team": "x"})])
    assert [r.name for r in rs] == ["tags:web"]
    assert "acr-deploy.repository is missing" in tag_rule_problems(rs)[0]
    assert not plan(push("web", "1.0.0"), rs).deployments
