"""The rules file: YAML in, validated `Rule`s out (pure; the file is read by the caller or by
`load_rules_file`). This module is the public face of the rules domain: import from here.

Validation is strict because a typo in a deploy rule is a silent outage: unknown keys, duplicate
keys, wrong types and out-of-range values are all errors. Every problem is collected (not just the
first) and named by file, line, rule and field: `RulesError.problems`. See docs/rules.md.

Where the pieces live (each re-exported here when others need it):
- `rules_fields`: `RuleProblem`, `RulesError`, the `FieldReader` (problem collection, scalars, durations);
- `rules_yaml`: safe YAML with line numbers and no duplicate keys;
- `rules_entry`: one entry of `rules:` (repository, tags, targets);
- `rules_rollout`: `rollout:`, `smoke:` and `verify:`;
- `tagplan`: the `Rule` model and `plan()`; `tagrules`: the convention and resource-tag rules;
- `tagpolicy`: tag policies; `tagversion`: version keys and semver ranges; `tagtemplate`: target templates.
This module reads the document itself (`version`, `registries`, `defaults`, `rules`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.domain.model import RolloutSettings
from shared.domain.rules_entry import Fallbacks, read_rule
from shared.domain.rules_fields import BadValue, FieldReader, RuleProblem, RulesError, kind
from shared.domain.rules_rollout import checks, rollout_fields, rollout_settings
from shared.domain.rules_yaml import load_yaml
from shared.domain.tagplan import (  # noqa: F401 - re-exported: `shared.domain.rules` is the public face
    REPOSITORY,
    PlanResult,
    RepositoryPattern,
    Rule,
    RuleDecision,
    TargetTemplate,
    plan,
)
from shared.domain.tagpolicy import (  # noqa: F401 - re-exported
    GlobPolicy,
    RegexPolicy,
    SemverPolicy,
    TagPolicy,
    compare_versions,
    is_newer,
    is_older,
    parse_short_policy,
)
from shared.domain.tagrules import convention_rule, tag_rule_problems, tag_rules_from_apps  # noqa: F401 - re-exported

__all__ = [
    "PlanResult", "RepositoryPattern", "Rule", "RuleDecision", "RuleProblem", "RulesError",
    "RulesFile", "TargetTemplate", "compare_versions", "convention_rule", "is_newer", "is_older",
    "load_rules_file", "parse_registry_entry", "parse_rules", "plan", "tag_rule_problems",
    "tag_rules_from_apps",
]

MAX_RULES_FILE_BYTES = 1_000_000
LOGIN_SERVER = re.compile(r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?$")
REGISTRY_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ContainerRegistry/registries/[^/]+$",
    re.IGNORECASE,
)
DEFAULTS_KEYS = ("subscription", "resource_group", "environment", "ignore", "allow_downgrade",
                 "rollout", "smoke", "verify")


@dataclass(frozen=True)
class RulesFile:
    path: str
    rules: tuple[Rule, ...]
    registries: tuple[str, ...] = ()  # "loginserver" or "loginserver=resourceId", as the setting
    defaults_rollout: RolloutSettings = RolloutSettings()  # for rules from resource tags
    disabled: tuple[str, ...] = ()  # names of rules with enabled: false


def parse_registry_entry(entry: str) -> tuple[str, str | None]:
    """'myreg.azurecr.io=/subscriptions/...' -> ('myreg.azurecr.io', '/subscriptions/...')."""
    login, _, resource_id = entry.partition("=")
    return login.strip().lower(), (resource_id.strip() or None)


# --------------------------------------------------------------------------- entry points


def parse_rules(
    text: str, file: str = "<rules>", *, subscription: str | None = None,
    resource_group: str | None = None,
) -> RulesFile:
    """Parse and validate a rules document. `subscription`/`resource_group` are the settings'
    defaults, used by targets that name neither (nor `defaults:` does). Raises RulesError."""
    data = load_yaml(text, file)
    fallbacks: Fallbacks = {
        "subscription": (subscription, "ACR_DEPLOY_SUBSCRIPTION_ID"),
        "resource_group": (resource_group, "ACR_DEPLOY_RESOURCE_GROUP"),
    }
    reader = FieldReader(file)
    try:
        return _document(reader, data, fallbacks)
    except BadValue:
        raise RulesError(file, problems=reader.problems) from None


def load_rules_file(
    path: str | Path, *, subscription: str | None = None, resource_group: str | None = None,
    display: str | None = None,
) -> RulesFile:
    """Read and parse a rules file; a missing or unreadable file is a RulesError too."""
    name = display or str(path)
    p = Path(path)
    try:
        if p.stat().st_size > MAX_RULES_FILE_BYTES:
            raise RulesError(name, None, None, f"larger than {MAX_RULES_FILE_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RulesError(name, None, None, "file not found (check ACR_DEPLOY_RULES_FILE)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(name, None, None, f"cannot read the file: {exc}") from exc
    return parse_rules(text, name, subscription=subscription, resource_group=resource_group)


# --------------------------------------------------------------------------- the document


def _document(r: FieldReader, data: Any, fallbacks: Fallbacks) -> RulesFile:
    if data is None:
        raise r.bad(None, "the file is empty (expected `rules:`; see rules.example.yaml)")
    data = r.keys(data, "", ("version", "registries", "defaults", "rules"), ("rules",))
    if "version" in data and data["version"] != 1:
        r.problem("version", f"unsupported version {data['version']!r} (this release reads 1)", data)
    registries = r.attempt(lambda: _registries(r, data.get("registries", [])), ())
    defaults = r.attempt(lambda: _defaults(r, data.get("defaults", {})), None)
    if defaults is None:
        defaults = {"rollout": {}, "ignore": ()}
    rules_data = data.get("rules")
    if not isinstance(rules_data, list):
        raise r.bad("rules", f"must be a list of rules, not {kind(rules_data)}", data)
    rules: list[Rule] = []
    disabled: list[str] = []
    names: dict[str, int] = {}
    for index, item in enumerate(rules_data, start=1):
        # Problems found from here on are this rule's: name it (or number it) and its line.
        name = item.get("name") if isinstance(item, dict) else None
        r.rule = name if isinstance(name, str) and name.strip() else f"#{index}"
        r.line = getattr(item, "line", None)
        try:
            rule, enabled = read_rule(r, item, index, defaults, fallbacks)
        except BadValue:
            continue
        if rule.name in names:
            r.problem("name", f"duplicate rule name (rule #{names[rule.name]} has it too)", item)
            continue
        names[rule.name] = index
        if enabled:
            rules.append(rule)
        else:
            disabled.append(rule.name)
    r.rule, r.line = None, None
    defaults_rollout = r.attempt(
        lambda: rollout_settings(r, defaults["rollout"], defaults.get("smoke"), defaults.get("verify"), "defaults.rollout"),
        RolloutSettings(),
    )
    if r.problems:
        raise RulesError(r.file, problems=r.problems)
    return RulesFile(r.file, tuple(rules), registries, defaults_rollout, tuple(disabled))


def _registries(r: FieldReader, value: Any) -> tuple[str, ...]:
    items = r.text_list(value, "registries")
    out = []
    for i, entry in enumerate(items):
        login, resource_id = parse_registry_entry(entry)
        if not LOGIN_SERVER.match(login):
            r.problem(f"registries[{i}]", f"{login!r} is not a registry login server (e.g. myreg.azurecr.io)")
            continue
        if resource_id and not REGISTRY_ID.match(resource_id):
            r.problem(
                f"registries[{i}]",
                "the part after '=' must be the registry's resource id "
                "(/subscriptions/.../providers/Microsoft.ContainerRegistry/registries/NAME)",
            )
            continue
        out.append(f"{login}={resource_id}" if resource_id else login)
    return tuple(out)


def _defaults(r: FieldReader, value: Any) -> dict[str, Any]:
    """`defaults:` checked on its own; each rule overlays its fields on these (`read_rule`)."""
    data = r.keys(value if value is not None else {}, "defaults", DEFAULTS_KEYS)
    out: dict[str, Any] = {"rollout": {}, "ignore": ()}
    for key in ("subscription", "resource_group", "environment"):
        if key in data:
            out[key] = r.attempt(lambda: r.text(data[key], f"defaults.{key}", data))
    if "ignore" in data:
        out["ignore"] = r.attempt(lambda: r.text_list(data["ignore"], "defaults.ignore", data), ())
    if "allow_downgrade" in data:
        out["allow_downgrade"] = r.attempt(lambda: r.flag(data["allow_downgrade"], "defaults.allow_downgrade", data), False)
    if "rollout" in data:
        out["rollout"] = r.attempt(lambda: rollout_fields(r, data["rollout"], "defaults.rollout"), {})
    for key in ("smoke", "verify"):
        if key in data:
            out[key] = r.attempt(lambda: checks(r, data[key], f"defaults.{key}", key), ())
    return out
