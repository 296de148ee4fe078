"""Keel-style rules from Azure resource tags: `acr-deploy.*` tags on a Container App (pure).

With `acr-deploy.*` tags on a Container App, `tag_rules_from_apps` makes one rule per tagged app
(the tags are read through `AppDirectory`, by `shared.services.rulesource`). They give ordinary
`Rule`s, planned by `planning.plan` like the rules file's. "Tag" in this module means an Azure
resource tag; an image's tag is the `acr-deploy.tags` policy's business (`policies`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Iterable

from shared.domain.controls import ApprovalPolicy
from shared.domain.model import RolloutSettings
from shared.domain.reachability import CHECKS_TAG
from shared.domain.references import REPOSITORY, repository_of
from shared.domain.rules.planning import RepositoryPattern, Rule, TargetTemplate
from shared.domain.rules.policies import InvalidPolicy, RegexPolicy, SemverPolicy, TagPolicy, parse_short_policy
from shared.domain.rules.target_names import is_valid_container_name

# A group holding a quantifier, itself quantified: "(a+)+", "(\\w*)*", "(x|y+){2,}".
NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)(?:[+*]|\{\d*,)")

TAG_REPOSITORY = "acr-deploy.repository"
TAG_POLICY = "acr-deploy.tags"
TAG_CONTAINER = "acr-deploy.container"
TAG_ENVIRONMENT = "acr-deploy.environment"
TAG_APPROVAL = "acr-deploy.approval"  # "true", or the approvers: "ann@contoso.com,bob@contoso.com"
_APPROVER = re.compile(r"[^\s,;]{1,128}")


def approval_from_tag(value: str) -> ApprovalPolicy | str:
    """The `acr-deploy.approval` tag as a policy, or the problem with it."""
    text = value.strip()
    if text.lower() in ("", "false", "no"):
        return ApprovalPolicy()
    if text.lower() in ("true", "yes", "required"):
        return ApprovalPolicy(required=True)
    names = [n for n in re.split(r"[\s,;]+", text) if n]
    if not names or not all(_APPROVER.fullmatch(n) for n in names):
        return f"{TAG_APPROVAL}={value!r}: expected true, false or approvers separated by commas"
    return ApprovalPolicy(required=True, approvers=tuple(names))


def _tag(tags: dict[str, str], name: str) -> str | None:
    # Azure tag names are case-insensitive.
    for key, value in tags.items():
        if key.lower() == name:
            return value
    return None


def tag_rule_from_app(app: Any, rollout: RolloutSettings | None = None) -> Rule | None:
    """One Keel-style rule from an app's `acr-deploy.*` tags (None when it has no repository tag).
    Invalid values give a rule with an `InvalidPolicy`, so pushes for it say why nothing happened."""
    tags = dict(app.tags or {})
    repo_value = _tag(tags, TAG_REPOSITORY)
    target = app.target
    name = f"tags:{target.app}"
    origin = f"resource tags on {target.resource_group}/{target.app}"
    if repo_value is None:
        # acr-deploy.checks alone is fine: it tunes whatever rule deploys the app (the rollout reads it).
        others = sorted(k for k in tags if k.lower().startswith("acr-deploy.") and k.lower() != CHECKS_TAG)
        if not others:
            return None
        # acr-deploy.tags without acr-deploy.repository: surely a mistake; say so, deploy nothing.
        # The target is kept (it never plans: no repository matches) so the app stays governed by
        # its tags: no other rule deploys to it either (`planning.tag_governed`).
        return Rule(
            name=name, repositories=(),
            targets=(TargetTemplate(target.subscription_id, target.resource_group, target.app, literal=True),),
            policy=InvalidPolicy(f"{', '.join(others)} set but {TAG_REPOSITORY} is missing"),
            source="tags", origin=origin,
        )
    problems = []
    pattern = RepositoryPattern.parse(repo_value)
    if not REPOSITORY.fullmatch(pattern.repository):
        problems.append(f"{TAG_REPOSITORY}={repo_value!r} is not a repository name")
    policy_text = _tag(tags, TAG_POLICY)
    policy: TagPolicy
    try:
        policy = parse_short_policy(policy_text) if policy_text is not None else SemverPolicy("")
    except ValueError as exc:
        problems.append(f"{TAG_POLICY}={policy_text!r}: {exc}")
        policy = SemverPolicy("")
    if isinstance(policy, RegexPolicy) and NESTED_QUANTIFIER.search(policy.pattern):
        # Whoever may tag an app is not necessarily trusted like the rules file's reviewers, and
        # `re` has no timeout: refuse the classic catastrophic-backtracking shape, e.g. (a+)+.
        problems.append(f"{TAG_POLICY}: nested quantifiers like (a+)+ are refused (catastrophic backtracking)")
    container = _tag(tags, TAG_CONTAINER)
    if container is not None and not is_valid_container_name(container):
        problems.append(f"{TAG_CONTAINER}={container!r} is not a container name")
    if container is None:
        images = dict(app.images or {})
        if len(images) > 1:
            hits = [c for c, image in images.items() if repository_of(image) == pattern.repository]
            if len(hits) == 1:
                container = hits[0]
            else:
                problems.append(
                    f"multi-container app: set {TAG_CONTAINER} (containers: {', '.join(sorted(images))})"
                )
    rollout = rollout or RolloutSettings()
    approval_text = _tag(tags, TAG_APPROVAL)
    if approval_text is not None:
        approval = approval_from_tag(approval_text)
        if isinstance(approval, str):
            problems.append(approval)
        else:
            rollout = replace(rollout, controls=replace(rollout.controls, approval=approval))
    if problems:
        policy = InvalidPolicy("; ".join(problems))
    return Rule(
        name=name,
        repositories=(pattern,),
        policy=policy,
        targets=(
            TargetTemplate(
                target.subscription_id, target.resource_group, target.app, container, literal=True
            ),
        ),
        environment=_tag(tags, TAG_ENVIRONMENT) or "",
        rollout=rollout,
        source="tags",
        origin=origin,
    )


def tag_rules_from_apps(apps: Iterable[Any], rollout: RolloutSettings | None = None) -> list[Rule]:
    """Rules from Container Apps tagged `acr-deploy.repository` (the others are skipped). Ordered by
    app key so planning is deterministic whatever order ARM lists them in."""
    rules = [r for r in (tag_rule_from_app(a, rollout) for a in apps) if r is not None]
    return sorted(rules, key=lambda r: r.origin.lower())


def tag_rule_problems(rules: Iterable[Rule]) -> list[str]:
    """Human-readable problems of tag-discovered rules (for logs and `rules explain`)."""
    return [f"{r.origin}: {r.policy.problem}" for r in rules if isinstance(r.policy, InvalidPolicy)]
