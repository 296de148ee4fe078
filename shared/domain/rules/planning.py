"""Rules and planning: which pushes go where, and why (pure).

A `Rule` joins a repository match, a tag policy, an ignore list and target templates. `plan()`
runs every rule on one push and returns the planned deployments plus one `RuleDecision` per rule
saying, in words, why it matched or not (`rules explain` prints them; intake records them when
nothing matched). Rules come from three sources: the rules file (`document`), the zero-config
convention (`convention`) and `acr-deploy.*` Azure resource tags on Container Apps (`resource_tags`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from shared.domain.model import ImagePush, PlannedDeployment, RolloutSettings, Target
from shared.domain.references import split_registry
from shared.domain.rules.policies import TagPolicy, glob_match
from shared.domain.rules.target_names import (
    CONTAINER_NAME_MAX,
    is_valid_app_name,
    is_valid_container_name,
    is_valid_resource_group,
    is_valid_subscription,
    placeholders,
    render,
    sanitize_name,
)

@dataclass(frozen=True)
class RepositoryPattern:
    repository: str  # exact name or glob
    registry: str | None = None  # login server (or glob), lowercase; None = any trusted registry

    @classmethod
    def parse(cls, text: str) -> "RepositoryPattern":
        registry, repository = split_registry(text.strip())
        return cls(repository, registry)

    def matches(self, registry: str, repository: str) -> bool:
        if self.registry is not None and not glob_match(self.registry, registry.lower()):
            return False
        return glob_match(self.repository, repository)

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}" if self.registry else self.repository


@dataclass(frozen=True)
class TargetTemplate:
    subscription: str
    resource_group: str
    app: str
    container: str | None = None
    # Literal targets (convention, resource tags) are used as they are: validated, never sanitized,
    # because guessing ("orders_api" -> "orders-api") could deploy to somebody else's app.
    literal: bool = False

    def __str__(self) -> str:
        text = f"{self.resource_group}/{self.app}"
        return text + (f" [{self.container}]" if self.container else "")


@dataclass(frozen=True)
class Rule:
    name: str
    repositories: tuple[RepositoryPattern, ...]
    policy: TagPolicy
    targets: tuple[TargetTemplate, ...]
    ignore: tuple[str, ...] = ()
    environment: str = ""
    allow_downgrade: bool = False
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    source: str = "rules"  # rules | tags | convention
    origin: str = ""  # where it was defined, for messages ("rules.yaml rule #2", "tags on app x")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "origin": self.origin,
            "repositories": [str(r) for r in self.repositories],
            "tags": self.policy.describe(),
            "ignore": list(self.ignore),
            "targets": [str(t) for t in self.targets],
            "environment": self.environment,
            "allow_downgrade": self.allow_downgrade,
            "strategy": self.rollout.strategy.value,
            "steps": list(self.rollout.steps),
        }


@dataclass(frozen=True)
class RuleDecision:
    """Why one rule did or did not take one push."""

    rule: str
    source: str
    matched: bool
    reason: str
    version_key: str = ""
    targets: tuple[Target, ...] = ()
    # Where the rule stopped: repository | ignore | tag | target | duplicate | governed (the app is
    # governed by its resource tags) | discovery | planned
    stage: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "source": self.source,
            "matched": self.matched,
            "stage": self.stage,
            "reason": self.reason,
            "version_key": self.version_key,
            "targets": [
                {"subscription_id": t.subscription_id, "resource_group": t.resource_group,
                 "app": t.app, "container": t.container}
                for t in self.targets
            ],
        }


@dataclass
class PlanResult:
    push: ImagePush
    deployments: list[PlannedDeployment] = field(default_factory=list)
    decisions: list[RuleDecision] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return bool(self.deployments)

    def reason(self, limit: int = 1000) -> str:
        """One line for an ignore record: why nothing (or what) was planned."""
        if self.deployments:
            apps = ", ".join(sorted({d.target.app for d in self.deployments}))
            return f"planned for {apps}"
        if not self.decisions:
            return "no rules configured"
        # Decisions of rules for other repositories are noise in an ignore record.
        relevant = [d for d in self.decisions if d.stage != "repository"]
        if not relevant:
            text = f"no rule covers repository {self.push.repository!r}"
        else:
            text = "no rule matched: " + "; ".join(f"{d.rule}: {d.reason}" for d in relevant)
        return text if len(text) <= limit else text[: limit - 3] + "..."


def _values(push: ImagePush, groups: dict[str, str]) -> dict[str, str]:
    values = {
        "repository": push.repository,
        "name": push.repository.rsplit("/", 1)[-1],
        "tag": push.tag,
        "registry": push.registry,
    }
    values.update({f"group:{k}": v for k, v in groups.items()})
    return values


def render_target(template: TargetTemplate, values: dict[str, str]) -> tuple[Target | None, str]:
    """Fill a target template. Returns (target, note) or (None, why not)."""
    sub = render(template.subscription, values)
    if not is_valid_subscription(sub):
        return None, f"subscription {sub!r} is not valid"
    rg = render(template.resource_group, values)
    if not is_valid_resource_group(rg):
        return None, f"resource group {rg!r} is not a valid name"
    raw = render(template.app, values)
    note = ""
    if template.literal or not placeholders(template.app):
        if not is_valid_app_name(raw):
            return None, f"{raw!r} is not a valid Container App name"
        app = raw
    else:
        app = sanitize_name(raw)
        if app is None:
            return None, f"app name template {template.app!r} gives {raw!r}: no valid Container App name"
        if app != raw:
            note = f"app name {raw!r} sanitized to {app!r}"
    container = None
    if template.container:
        raw_c = render(template.container, values)
        if template.literal or not placeholders(template.container):
            container = raw_c
            if not is_valid_container_name(container):
                return None, f"{container!r} is not a valid container name"
        else:
            container = sanitize_name(raw_c, CONTAINER_NAME_MAX)
            if container is None:
                return None, f"container template {template.container!r} gives no valid name"
    return Target(sub, rg, app, container), note


def evaluate_rule(rule: Rule, push: ImagePush) -> tuple[RuleDecision, list[PlannedDeployment]]:
    def no(stage: str, reason: str, key: str = "") -> tuple[RuleDecision, list[PlannedDeployment]]:
        return RuleDecision(rule.name, rule.source, False, reason, key, stage=stage), []

    if not any(p.matches(push.registry, push.repository) for p in rule.repositories):
        wanted = ", ".join(str(p) for p in rule.repositories) or "(none)"
        return no("repository", f"repository {push.registry}/{push.repository} does not match {wanted}")
    for pattern in rule.ignore:
        if glob_match(pattern, push.tag):
            return no("ignore", f"tag {push.tag!r} is ignored (matches {pattern!r})")
    verdict = rule.policy.evaluate(push.tag)
    if not verdict.matched:
        return no("tag", verdict.reason)
    values = _values(push, dict(verdict.groups))
    planned: list[PlannedDeployment] = []
    notes: list[str] = []
    for i, template in enumerate(rule.targets, start=1):
        target, note = render_target(template, values)
        if target is None:
            notes.append(f"target #{i} skipped: {note}")
            continue
        if note:
            notes.append(note)
        planned.append(
            PlannedDeployment(
                push=push,
                target=target,
                rule=rule.name,
                source=rule.source,
                environment=rule.environment,
                version_key=verdict.version_key,
                allow_downgrade=rule.allow_downgrade,
                rollout=rule.rollout,
            )
        )
    reason = verdict.reason + "".join(f"; {n}" for n in notes)
    if not planned:
        return no("target", reason, verdict.version_key)
    decision = RuleDecision(
        rule.name, rule.source, True, reason, verdict.version_key, tuple(p.target for p in planned),
        stage="planned",
    )
    return decision, planned


def target_identity(target: Target) -> tuple[str, str]:
    return target.key, (target.container or "").lower()


def tag_governed(rules: Sequence[Rule]) -> dict[str, str]:
    """Apps that carry `acr-deploy.*` resource tags, `Target.key` -> the name of their tag rule.
    Such an app is governed by its tags alone: no other rule (the convention, the rules file) sends
    it anything, so a tag policy that refuses a version is never bypassed."""
    return {
        Target(t.subscription, t.resource_group, t.app).key: rule.name
        for rule in rules if rule.source == "tags" for t in rule.targets
    }


def plan(push: ImagePush, rules: Sequence[Rule]) -> PlanResult:
    """Every rule, in order, on one push. One push may fan out to several targets; a target that an
    earlier rule already planned is not planned twice (file rules come before tag rules), and an app
    with resource tags is planned by its tag rule only (`tag_governed`)."""
    result = PlanResult(push)
    governed = tag_governed(rules)
    seen: dict[tuple[str, str], str] = {}
    for rule in rules:
        decision, planned = evaluate_rule(rule, push)
        kept = []
        notes = []
        stage = "planned"
        for p in planned:
            ident = target_identity(p.target)
            owner = governed.get(p.target.key)
            if owner is not None and rule.source != "tags":
                notes.append(f"{p.target.app} is governed by its acr-deploy.* resource tags alone (rule {owner!r})")
                stage = "governed"
                continue
            if ident in seen:
                notes.append(f"{p.target.app} already planned by rule {seen[ident]!r}")
                stage = "duplicate" if stage == "planned" else stage
                continue
            seen[ident] = rule.name
            kept.append(p)
        if notes:
            decision = RuleDecision(
                decision.rule, decision.source, bool(kept),
                decision.reason + "".join(f"; {n}" for n in notes),
                decision.version_key, tuple(p.target for p in kept), stage="planned" if kept else stage,
            )
        result.decisions.append(decision)
        result.deployments.extend(kept)
    return result
