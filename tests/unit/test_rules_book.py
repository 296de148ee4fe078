"""RuleBook: loading from settings, file + resource-tag rules, the discovery cache and its failures."""

from __future__ import annotations

import dataclasses
import logging
import threading

import pytest

from shared.domain.rules import RulesError, convention_rule
from shared.services.rulesource import RuleBook
from shared.settings import Settings
from tests.unit.rules_support import SUB, FakeClock, FakeDirectory, app, push

RULES = f"""
registries: [myreg.azurecr.io]
defaults:
  subscription: {SUB}
  resource_group: apps
  smoke: [{{path: /ready}}]
rules:
  - name: orders
    repository: orders-api
    targets: [{{app: orders-api}}]
"""


def settings(**kw) -> Settings:
    env = {"ACR_DEPLOY_SUBSCRIPTION_ID": SUB, "ACR_DEPLOY_RESOURCE_GROUP": "apps"}
    env.update(kw)
    return Settings.from_env(env)


def test_loads_the_file_relative_to_the_app_root(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "rules.yaml").write_text(RULES)
    book = RuleBook.from_settings(settings(ACR_DEPLOY_RULES_FILE="config/rules.yaml"), root=tmp_path)
    assert [r.name for r in book.rules] == ["orders"]
    assert book.trusted_registries() == ["myreg.azurecr.io"]
    assert book.source == "config/rules.yaml"
    assert [d.target.app for d in book.plan(push("orders-api", "1.0.0")).deployments] == ["orders-api"]


def test_the_default_root_is_the_function_app_directory():
    book = RuleBook.from_settings(settings(ACR_DEPLOY_RULES_FILE="rules.example.yaml"))
    assert len(book.rules) >= 5


def test_a_broken_file_fails_at_start_up(tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES.replace("targets:", "targetz:"))
    with pytest.raises(RulesError) as info:
        RuleBook.from_settings(settings(ACR_DEPLOY_RULES_FILE="rules.yaml"), root=tmp_path)
    assert info.value.file == "rules.yaml" and info.value.rule == "orders"
    with pytest.raises(RulesError, match="file not found"):
        RuleBook.from_settings(settings(ACR_DEPLOY_RULES_FILE="missing.yaml"), root=tmp_path)


def test_no_file_means_the_convention():
    book = RuleBook.from_settings(settings())
    assert [r.name for r in book.rules] == ["convention"] and book.trusted_registries() == []
    (d,) = book.plan(push("orders-api", "2.0.0")).deployments
    assert (d.target.resource_group, d.target.app, d.source) == ("apps", "orders-api", "convention")


def test_the_convention_needs_its_settings():
    with pytest.raises(RulesError) as info:
        RuleBook.from_settings(Settings.from_env({"ACR_DEPLOY_SUBSCRIPTION_ID": SUB}))
    assert info.value.field == "ACR_DEPLOY_RESOURCE_GROUP"
    # ...unless resource tags can drive deployments on their own.
    env = {"ACR_DEPLOY_SUBSCRIPTION_ID": SUB, "ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS": "a,b"}
    book = RuleBook.from_settings(Settings.from_env(env), directory=FakeDirectory([]))
    assert book.rules == ()


def test_file_and_tag_rules_plan_together_and_a_tagged_app_is_planned_by_its_tags():
    directory = FakeDirectory([
        app("orders-api", {"acr-deploy.repository": "orders-api", "acr-deploy.tags": "semver"}),
        app("orders-api-canary", {"acr-deploy.repository": "orders-api"}),
    ])
    book = RuleBook.from_settings(settings(), directory=directory, background=False)
    result = book.plan(push("orders-api", "1.2.3"))
    assert [(d.target.app, d.source) for d in result.deployments] == [
        ("orders-api", "tags"), ("orders-api-canary", "tags")
    ]
    convention = next(d for d in result.decisions if d.rule == "convention")
    assert not convention.matched and convention.stage == "governed"
    assert "governed by its acr-deploy.* resource tags alone (rule 'tags:orders-api')" in convention.reason


def test_an_app_governed_by_its_tags_never_gets_what_they_refuse(tmp_path):
    """semver:1.x on the app's tags: 2.0.0 goes nowhere, neither by the convention nor by a file rule."""
    directory = FakeDirectory([app("orders-api", {"acr-deploy.repository": "orders-api",
                                                  "acr-deploy.tags": "semver:1.x"})])
    convention = RuleBook.from_settings(settings(), directory=directory, background=False)
    (tmp_path / "rules.yaml").write_text(RULES)
    rules_file = RuleBook.from_settings(settings(ACR_DEPLOY_RULES_FILE="rules.yaml"), directory=directory,
                                        root=tmp_path, background=False)
    for book, other in ((convention, "convention"), (rules_file, "orders")):
        refused = book.explain(push("orders-api", "2.0.0"))
        assert refused.result.deployments == []
        by_rule = {d["rule"]: d for d in refused.to_dict()["decisions"]}
        assert by_rule["tags:orders-api"]["stage"] == "tag"
        assert by_rule[other]["stage"] == "governed" and "tags:orders-api" in by_rule[other]["reason"]
        assert "governed by its acr-deploy.* resource tags" in refused.to_dict()["summary"]
        (accepted,) = book.plan(push("orders-api", "1.4.0")).deployments
        assert accepted.source == "tags"


def test_an_app_with_broken_tags_is_still_governed_by_them():
    directory = FakeDirectory([app("orders-api", {"acr-deploy.tags": "semver:1.x"})])  # no repository tag
    book = RuleBook.from_settings(settings(), directory=directory, background=False)
    result = book.plan(push("orders-api", "1.0.0"))
    assert result.deployments == []
    assert "governed" in result.reason()


def test_discovery_is_off_when_settings_turn_it_off():
    directory = FakeDirectory([app("orders-api", {"acr-deploy.repository": "x"})])
    book = RuleBook.from_settings(settings(ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS="-"), directory=directory)
    book.plan(push("x", "1.0.0"))
    assert directory.calls == 0 and book.discovery_status() == {"enabled": False}


def test_tag_rules_inherit_the_files_default_rollout(tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES)
    directory = FakeDirectory([app("web", {"acr-deploy.repository": "web"})])
    book = RuleBook.from_settings(settings(ACR_DEPLOY_RULES_FILE="rules.yaml"), directory=directory,
                                  root=tmp_path, background=False)
    (d,) = book.plan(push("web", "1.0.0")).deployments
    assert d.rollout.smoke[0].path == "/ready"


def _book(directory, clock, ttl=60.0, background=False, rules=()) -> RuleBook:
    return RuleBook(list(rules), directory=directory, ttl=ttl, clock=clock, background=background)


def test_discovery_is_cached_but_untagging_stops_the_next_push():
    directory = FakeDirectory([app("web", {"acr-deploy.repository": "web-src"})])
    clock = FakeClock()
    book = _book(directory, clock)
    for _ in range(5):  # a burst shares one list
        assert book.plan(push("web-src", "1.0.0")).deployments
    assert directory.calls == 1
    directory.apps = []  # the tag was removed from the app
    clock.now += 6  # older than confirm_s, well within the TTL
    assert not book.plan(push("web-src", "1.0.1")).deployments
    assert directory.calls == 2


def test_a_push_no_tag_rule_covers_refreshes_discovery_once_per_repository_per_ttl():
    directory = FakeDirectory([])
    clock = FakeClock()
    book = _book(directory, clock, rules=[convention_rule(SUB, "apps")])
    assert [d.source for d in book.plan(push("web-src", "1.0.0")).deployments] == ["convention"]
    assert directory.calls == 1
    directory.apps = [app("web", {"acr-deploy.repository": "web-src"})]  # tagged since the list
    clock.now += 10
    planned = book.plan(push("web-src", "1.0.1")).deployments
    assert sorted((d.target.app, d.source) for d in planned) == [("web", "tags"), ("web-src", "convention")]
    assert directory.calls == 2
    # Bounded: a repository nobody tags costs one list per TTL, however many pushes it gets.
    for _ in range(5):
        clock.now += 6
        book.plan(push("other", "1.0.0"))
    assert directory.calls == 3
    clock.now += 60
    book.plan(push("other", "1.0.1"))
    assert directory.calls == 4


def test_a_discovery_failure_keeps_the_stale_rules_and_says_so(caplog):
    directory = FakeDirectory([app("web", {"acr-deploy.repository": "web-src"})])
    clock = FakeClock()
    book = _book(directory, clock)
    assert book.plan(push("web-src", "1.0.0")).deployments
    directory.error = ConnectionError("ARM unreachable")
    clock.now += 61
    with caplog.at_level(logging.WARNING, logger="acr_deploy.rules"):
        result = book.plan(push("web-src", "1.0.0"))
    assert [d.target.app for d in result.deployments] == ["web"]  # stale, but working
    assert "ARM unreachable" in caplog.text
    assert any(d.rule == "tags" and "discovery failed" in d.reason and "last good" in d.reason
               for d in result.decisions)
    # No retry on every push while it fails: the next attempt waits one TTL.
    for _ in range(3):
        book.plan(push("web-src", "1.0.0"))
    assert directory.calls == 2
    clock.now += 61
    directory.error = None
    result = book.plan(push("web-src", "1.0.0"))
    assert directory.calls == 3 and not any(d.rule == "tags" for d in result.decisions)
    assert book.discovery_status()["error"] == ""


def test_file_rules_work_when_discovery_never_succeeded():
    directory = FakeDirectory([])
    directory.error = RuntimeError("no credential")
    book = _book(directory, FakeClock(), rules=[convention_rule(SUB, "apps")])
    result = book.plan(push("orders-api", "1.0.0"))
    assert [d.target.app for d in result.deployments] == ["orders-api"]
    assert any("never loaded" in d.reason for d in result.decisions)


def test_invalid_tags_are_logged_once_and_explained(caplog):
    directory = FakeDirectory([app("web", {"acr-deploy.repository": "web", "acr-deploy.tags": "calver"})])
    clock = FakeClock()
    book = _book(directory, clock, ttl=0)
    with caplog.at_level(logging.WARNING, logger="acr_deploy.rules"):
        for _ in range(3):
            book.plan(push("web", "1.0.0"))
    assert directory.calls == 3
    assert caplog.text.count("ignoring invalid acr-deploy tags") == 1
    explanation = book.explain(push("web", "1.0.0"))
    assert explanation.tag_problems and "calver" in explanation.tag_problems[0]
    data = explanation.to_dict()
    assert data["discovery"]["enabled"] and data["deployments"] == []
    assert any(r["name"] == "tags:web" for r in data["rules"])


def test_background_refresh_serves_the_stale_list_without_waiting():
    """Pushes that file rules plan never wait for ARM; only a tag rule's plan is confirmed."""
    directory = FakeDirectory([app("web", {"acr-deploy.repository": "web-src"})])
    clock = FakeClock()
    file_rule = dataclasses.replace(convention_rule(SUB, "apps"), name="all", source="rules")
    book = _book(directory, clock, background=True, rules=[file_rule])
    assert book.plan(push("web-src", "1.0.0")).deployments  # first load: synchronous
    gate, entered = threading.Event(), threading.Event()
    original = directory.list_tagged_apps

    def slow():
        entered.set()
        assert gate.wait(5)
        return original()

    directory.list_tagged_apps = slow
    clock.now += 61
    assert book.plan(push("orders-api", "1.0.0")).deployments  # file rule: stale list, served at once
    assert entered.wait(5)
    assert book.plan(push("orders-api", "1.0.0")).deployments  # still refreshing: one thread only
    gate.set()
    for _ in range(100):  # bounded wait for the refresh thread
        if book.discovery_status()["age_s"] == 0:
            break
        threading.Event().wait(0.02)
    assert directory.calls == 2
    directory.list_tagged_apps = original
    directory.apps = []
    clock.now += 6
    assert [d.source for d in book.plan(push("web-src", "1.0.0")).deployments] == ["rules"]
    assert directory.calls == 3


def test_explain_lists_sources_and_rules(tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES)
    book = RuleBook.from_settings(settings(ACR_DEPLOY_RULES_FILE="rules.yaml"), root=tmp_path)
    data = book.explain(push("orders-api", "1.0.0")).to_dict()
    assert data["sources"] == ["rules.yaml"]
    assert [r["name"] for r in data["rules"]] == ["orders"]
    (dep,) = data["deployments"]
    assert dep["app"] == "orders-api" and dep["image"].startswith("myreg.azurecr.io/orders-api@sha256:")
    assert data["summary"] == "planned for orders-api"


def test_discovery_warms_up_in_the_background_and_the_first_push_waits_only_for_it():
    release = threading.Event()

    class SlowDirectory(FakeDirectory):
        def list_tagged_apps(self):
            assert release.wait(10), "warm-up never released"
            return super().list_tagged_apps()

    directory = SlowDirectory([app("orders-api-canary", {"acr-deploy.repository": "orders-api"})])
    book = RuleBook.from_settings(settings(), directory=directory)  # background, as the function app
    assert directory.calls == 0  # construction did not block on ARM: the load runs in a thread
    release.set()
    result = book.plan(push("orders-api", "1.2.3"))  # joins the warm-up instead of listing again
    assert [d.target.app for d in result.deployments] == ["orders-api", "orders-api-canary"]
    assert directory.calls == 1
