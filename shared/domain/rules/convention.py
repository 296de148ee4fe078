"""The zero-config rule: with no rules file, a repository deploys to the Container App of the same
name (pure). It is an ordinary `Rule`, planned by `planning.plan` like the rules file's."""

from __future__ import annotations

from shared.domain.rules.planning import RepositoryPattern, Rule, TargetTemplate
from shared.domain.rules.policies import SemverPolicy


def convention_rule(subscription: str, resource_group: str) -> Rule:
    """No rules file: repository name (last path segment) = Container App name in the default
    resource group; semver release tags deploy; everything else is ignored."""
    return Rule(
        name="convention",
        repositories=(RepositoryPattern("*"),),
        policy=SemverPolicy(""),
        targets=(TargetTemplate(subscription, resource_group, "{name}", literal=True),),
        source="convention",
        origin="zero-config convention (no rules file)",
    )
