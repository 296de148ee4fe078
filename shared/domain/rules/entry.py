"""One entry of the rules file's `rules:` list -> a `Rule` (repository, tags, targets, rollout).

`defaults` is what the file's `defaults:` section gave (already checked); `fallbacks` are the app
settings that fill a target's subscription / resource group when neither the target nor the
defaults name one, with the setting's name for the message when it is not set either.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from dataclasses import replace

from shared.domain.controls import ReleaseControls
from shared.domain.rules.controls import (
    CONTROL_KEYS, read_approval, read_notify, read_promote, read_promotion_only,
)
from shared.domain.rules.fields import BadValue, FieldReader
from shared.domain.rules.rollout_settings import checks, rollout_fields, rollout_settings
from shared.domain.references import REPOSITORY
from shared.domain.rules.planning import RepositoryPattern, Rule, TargetTemplate
from shared.domain.rules.policies import GlobPolicy, RegexPolicy, SemverPolicy, TagPolicy, parse_short_policy
from shared.domain.rules.target_names import (
    TemplateError,
    check_template,
    is_valid_app_name,
    is_valid_container_name,
    is_valid_resource_group,
    is_valid_subscription,
    literal_text,
    placeholders,
)

Fallbacks = Mapping[str, tuple[str | None, str]]  # key -> (value from the settings, setting name)

RULE_KEYS = ("name", "repository", "tags", "ignore", "targets", "environment",
             "allow_downgrade", "rollout", "smoke", "verify", "enabled", *CONTROL_KEYS)
TARGET_KEYS = ("app", "subscription", "resource_group", "container")
# Names acr-deploy gives the rules it makes itself; a file rule with one would be mistaken for them.
RESERVED_NAME = "convention"
RESERVED_PREFIX = "tags:"

# Literal (placeholder-free) target fields are checked against Azure's naming rules here, so the
# mistake is reported when the file is loaded rather than when a push arrives.
_NAME_VALID = {
    "app": is_valid_app_name, "container": is_valid_container_name,
    "resource_group": is_valid_resource_group, "subscription": is_valid_subscription,
}
_NAME_RULES = {
    "app": "Container App names are 2-32 lowercase letters, digits and '-', start with a letter, end with a letter or digit, no '--'",
    "container": "container names are lowercase letters, digits and '-', start with a letter",
    "resource_group": "resource group names are up to 90 letters, digits, '_', '-', '.', '(', ')', not ending in '.'",
    "subscription": "expected a subscription id",
}


def read_rule(
    r: FieldReader, item: Any, index: int, defaults: dict[str, Any], fallbacks: Fallbacks,
) -> tuple[Rule, bool]:
    """(the rule, whether it is enabled). Raises BadValue when it cannot be built (problems recorded)."""
    data = r.keys(item, "", RULE_KEYS, ("repository", "targets"))
    name = r.attempt(lambda: r.text(data["name"], "name", data), None) if "name" in data else None
    name = name or f"rule-{index}"
    if name in (RESERVED_NAME,) or name.startswith(RESERVED_PREFIX):
        r.problem("name", f"{name!r} is reserved for rules acr-deploy makes itself", data)
    repositories = r.attempt(lambda: _repositories(r, data["repository"], data), ())
    policy = r.attempt(lambda: _policy(r, data.get("tags"), data), None)
    ignore = tuple(defaults.get("ignore", ())) + (
        r.attempt(lambda: r.text_list(data["ignore"], "ignore", data), ()) if "ignore" in data else ()
    )
    environment = data.get("environment", defaults.get("environment") or "")
    environment = r.attempt(lambda: r.text(environment, "environment", data, empty=True), "") if environment else ""
    allow = data.get("allow_downgrade", defaults.get("allow_downgrade", False))
    allow = r.attempt(lambda: r.flag(allow, "allow_downgrade", data), False)
    enabled = r.attempt(lambda: r.flag(data.get("enabled", True), "enabled", data), True)
    groups = policy.group_names() if policy is not None else None
    targets = r.attempt(lambda: _targets(r, data["targets"], data, defaults, fallbacks, groups), ())
    fields = dict(defaults["rollout"])
    if "rollout" in data:
        fields.update(r.attempt(lambda: rollout_fields(r, data["rollout"], "rollout"), {}))
    smoke = r.attempt(lambda: checks(r, data["smoke"], "smoke", "smoke"), None) if "smoke" in data else defaults.get("smoke")
    verify = r.attempt(lambda: checks(r, data["verify"], "verify", "verify"), None) if "verify" in data else defaults.get("verify")
    rollout = r.attempt(lambda: rollout_settings(r, fields, smoke, verify, "rollout"), None)
    controls = r.attempt(lambda: _controls(r, data), None)
    if policy is None or rollout is None or controls is None or not repositories or not targets:
        raise BadValue()
    rollout = replace(rollout, controls=controls)
    rule = Rule(
        name=name,
        repositories=repositories,
        policy=policy,
        targets=targets,
        ignore=ignore,
        environment=environment,
        allow_downgrade=allow,
        rollout=rollout,
        source="rules",
        origin=f"{r.file} rule #{index}" + (f" (line {data.line})" if getattr(data, "line", None) else ""),
    )
    return rule, enabled


def _controls(r: FieldReader, data: Any) -> ReleaseControls:
    """approval / promote / notify (freeze windows are the file's, attached by `document`)."""
    readers = {"approval": read_approval, "promote": read_promote, "notify": read_notify,
               "promotion_only": read_promotion_only}
    found = {key: r.attempt(lambda k=key: readers[k](r, data[k], data)) for key in CONTROL_KEYS if key in data}
    if any(v is None for v in found.values()):
        raise BadValue()
    return ReleaseControls(**found)


def _repositories(r: FieldReader, value: Any, node: Any) -> tuple[RepositoryPattern, ...]:
    items = r.text_list(value, "repository", node)
    if not items:
        raise r.bad("repository", "names no repository", node)
    out = []
    for i, text in enumerate(items):
        field = "repository" if isinstance(value, str) else f"repository[{i}]"
        pattern = RepositoryPattern.parse(text)
        probe = re.sub(r"[*?]|\[[^\]]*\]", "x", pattern.repository)  # globs: check the rest
        if not REPOSITORY.fullmatch(probe):
            r.problem(
                field,
                f"{text!r} is not a repository name or glob (lowercase letters, digits, "
                "'.', '_', '-' and '/'; '*' and '?' as wildcards)",
                node,
            )
            continue
        out.append(pattern)
    return tuple(out)


def _policy(r: FieldReader, value: Any, node: Any) -> TagPolicy:
    """`tags:` as the short text form (`semver:^1`) or a mapping with exactly one kind."""
    if value is None:
        return SemverPolicy("")
    if isinstance(value, str):
        try:
            return parse_short_policy(value)
        except ValueError as exc:
            raise r.bad("tags", str(exc), node) from exc
    data = r.keys(value, "tags", ("semver", "regex", "glob", "prereleases", "sort_by"))
    kinds = [k for k in ("semver", "regex", "glob") if k in data]
    if len(kinds) != 1:
        raise r.bad("tags", "needs exactly one of semver, regex, glob" + (f" (has {', '.join(kinds)})" if kinds else ""), data)
    kind = kinds[0]
    if "prereleases" in data and kind != "semver":
        r.problem("tags.prereleases", "applies to semver only", data)
    if "sort_by" in data and kind != "regex":
        r.problem("tags.sort_by", "applies to regex only (semver orders itself; globs have no order)", data)
    try:
        if kind == "semver":
            rng = data["semver"]
            if rng is None or rng is True:  # `semver:` or `semver: true` = any version
                rng = ""
            rng = r.text(rng, "tags.semver", data, empty=True)
            mode = data.get("prereleases", False)
            if isinstance(mode, bool):
                mode = "yes" if mode else "no"
            elif mode not in ("yes", "no", "only"):
                raise r.bad("tags.prereleases", "must be true, false or only", data)
            return SemverPolicy(rng, mode)
        if kind == "regex":
            pattern = r.text(data["regex"], "tags.regex", data)
            group, order = _sort_by(r, data.get("sort_by"), data)
            return RegexPolicy(pattern, group, order)
        return GlobPolicy(r.text(data["glob"], "tags.glob", data))
    except ValueError as exc:  # the policy's own checks (bad range, regex, sort group)
        raise r.bad(f"tags.{kind}", str(exc), data) from exc


def _sort_by(r: FieldReader, value: Any, node: Any) -> tuple[str | None, str]:
    if value is None:
        return None, "numerical"
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value), "numerical"
    data = r.keys(value, "tags.sort_by", ("group", "order"), ("group",))
    group = data["group"]
    if isinstance(group, bool) or not isinstance(group, (str, int)):
        raise r.bad("tags.sort_by.group", "must be a group name or number", data)
    order = data.get("order", "numerical")
    if order not in ("numerical", "alphabetical"):
        raise r.bad("tags.sort_by.order", f"must be numerical or alphabetical, not {order!r}", data)
    return str(group), order


def _targets(
    r: FieldReader, value: Any, node: Any, defaults: dict[str, Any], fallbacks: Fallbacks,
    groups: frozenset[str] | None,
) -> tuple[TargetTemplate, ...]:
    if not isinstance(value, list) or not value:
        raise r.bad("targets", "must be a non-empty list of targets ({app: NAME, ...})", node)
    out = []
    for i, item in enumerate(value):
        field = f"targets[{i}]"
        try:
            data = r.keys(item, field, TARGET_KEYS, ("app",))
            out.append(_one_target(r, data, field, defaults, fallbacks, groups))
        except BadValue:
            continue
    if len(out) != len(value):  # a rule deploying to only some of its targets would surprise
        raise BadValue()
    return tuple(out)


def _one_target(
    r: FieldReader, data: dict, field: str, defaults: dict[str, Any], fallbacks: Fallbacks,
    groups: frozenset[str] | None,
) -> TargetTemplate:
    ok = True
    resolved: dict[str, str | None] = {}
    for key in TARGET_KEYS:
        f = f"{field}.{key}"
        if key in data:
            value = r.attempt(lambda: r.text(data[key], f, data))
        else:
            value = defaults.get(key) if key in fallbacks else None
            if value is None and key in fallbacks:
                value = fallbacks[key][0]
                if not value:
                    r.problem(f, f"not set here, in defaults, or by {fallbacks[key][1]}", data)
        if value is None:
            ok = ok and key == "container"
            resolved[key] = None
            continue
        if not _template_ok(r, value, f, key, groups, data):
            ok = False
        resolved[key] = value
    if not ok:
        raise BadValue()
    return TargetTemplate(
        resolved["subscription"], resolved["resource_group"], resolved["app"], resolved["container"]  # type: ignore[arg-type]
    )


def _template_ok(r: FieldReader, value: str, field: str, key: str, groups: frozenset[str] | None, node: Any) -> bool:
    try:
        check_template(value, groups if groups is not None else frozenset())
    except TemplateError as exc:
        if groups is not None or "{group:" not in value:  # unknown groups: the policy itself was broken
            r.problem(field, str(exc), node)
            return False
    if placeholders(value):
        # The rendered name is sanitized at plan time, but only placeholders may need it.
        if key in ("app", "container") and not re.fullmatch(r"[a-z0-9-]*", literal_text(value)):
            r.problem(field, f"{value!r}: outside placeholders only lowercase letters, digits and '-' are allowed", node)
            return False
        return True
    valid = _NAME_VALID[key](value)
    if not valid:
        r.problem(field, f"{value!r} is not valid: {_NAME_RULES[key]}", node)
    return valid
