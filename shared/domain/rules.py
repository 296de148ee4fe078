"""The rules file: YAML in, validated `Rule`s out (pure; the file is read by the caller or by
`load_rules_file`). This module is the public face of the rules domain; the model and planning
live in `tagplan`, tag policies in `tagpolicy`, templates in `tagtemplate`.

Validation is strict because a typo in a deploy rule is a silent outage: unknown keys, duplicate
keys, wrong types and out-of-range values are all errors. Every problem is collected (not just the
first) and named by file, line, rule and field: `RulesError.problems`. See docs/rules.md.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from shared.domain.model import RolloutSettings, SmokeCheck, Strategy
from shared.domain.tagplan import (  # re-exported: `shared.domain.rules` is the public face
    REPOSITORY,
    PlanResult,
    RepositoryPattern,
    Rule,
    RuleDecision,
    TargetTemplate,
    convention_rule,
    plan,
    tag_rule_problems,
    tag_rules_from_apps,
)
from shared.domain.tagpolicy import (
    GlobPolicy,
    RegexPolicy,
    SemverPolicy,
    TagPolicy,
    compare_versions,
    is_newer,
    is_older,
    parse_short_policy,
)
from shared.domain.tagtemplate import (
    TemplateError,
    check_template,
    is_valid_app_name,
    is_valid_container_name,
    is_valid_resource_group,
    is_valid_subscription,
    literal_text,
    placeholders,
)

__all__ = [
    "PlanResult", "RepositoryPattern", "Rule", "RuleDecision", "RuleProblem", "RulesError",
    "RulesFile", "TargetTemplate", "compare_versions", "convention_rule", "is_newer", "is_older",
    "load_rules_file", "parse_registry_entry", "parse_rules", "plan", "tag_rule_problems",
    "tag_rules_from_apps",
]

DEFAULT_CANARY_STEPS = (10, 50, 100)
MAX_RULES_FILE_BYTES = 1_000_000
# Headers whose values are credentials: the rollout settings (smoke checks included) are stored in
# every deployment record, so a secret here would end up in the history.
SENSITIVE_HEADER = re.compile(r"(?i)^(authorization|proxy-authorization|cookie)$|token|secret|api[-_]?key|password")
LOGIN_SERVER = re.compile(r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?$")
REGISTRY_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ContainerRegistry/registries/[^/]+$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RuleProblem:
    file: str
    rule: str | None  # rule name, or "#N" (1-based) when it has none; None = not in a rule
    field: str | None  # dotted path inside the rule (or the top level), e.g. "targets[0].app"
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        parts = [where]
        if self.rule is not None:
            parts.append(f"rule {self.rule}")
        if self.field:
            parts.append(self.field)
        return ": ".join(parts) + f": {self.message}"


class RulesError(Exception):
    """A broken rules file. Carries every problem found; `file`/`rule`/`field`/`message` are the
    first one's (for callers that show one)."""

    def __init__(
        self, file: str, rule: str | None = None, field: str | None = None, message: str = "",
        *, problems: list[RuleProblem] | None = None, line: int | None = None,
    ) -> None:
        self.problems = list(problems) if problems else [RuleProblem(file, rule, field, message, line)]
        first = self.problems[0]
        self.file, self.rule, self.field, self.message = first.file, first.rule, first.field, first.message
        count = len(self.problems)
        head = f"{first.file}: {count} problem{'s' if count != 1 else ''} in the rules"
        super().__init__(head + "\n" + "\n".join(f"  {p}" for p in self.problems))


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


# --------------------------------------------------------------------------- YAML with lines


class _Map(dict):
    line: int | None = None


class _Loader(yaml.SafeLoader):
    """Safe YAML that remembers each mapping's line and refuses duplicate keys (PyYAML would
    silently keep the last one, hiding a mistake)."""


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    result = _Map()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in result
        except TypeError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            ) from exc
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


# --------------------------------------------------------------------------- the parser

_MISSING = object()


class _Bad(Exception):
    """One value is wrong; already recorded. Unwinds to the enclosing field."""


class _Parser:
    def __init__(self, file: str, subscription: str | None, resource_group: str | None) -> None:
        self.file = file
        self.fallback_subscription = subscription
        self.fallback_resource_group = resource_group
        self.problems: list[RuleProblem] = []
        self.rule: str | None = None
        self.line: int | None = None

    # ---- reporting
    def problem(self, field: str | None, message: str, node: Any = None) -> None:
        line = getattr(node, "line", None) or self.line
        self.problems.append(RuleProblem(self.file, self.rule, field, message, line))

    def bad(self, field: str, message: str, node: Any = None) -> _Bad:
        self.problem(field, message, node)
        return _Bad()

    def keys(self, data: Any, field: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        label = field or ("a rule" if self.rule is not None else "the file")
        if not isinstance(data, dict):
            subject = "must" if field else f"{label} must"
            raise self.bad(field, f"{subject} be a mapping (key: value), not {_kind(data)}")
        ok = True
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
                self.problem(_join(field, str(key)), f"unknown key{hint}", data)
                ok = False
        for key in required:
            if key not in data:
                self.problem(_join(field, key), "is required", data)
                ok = False
        if not ok and any(k not in data for k in required):
            raise _Bad()
        return data

    def attempt(self, fn: Callable[[], Any], default: Any = None) -> Any:
        try:
            return fn()
        except _Bad:
            return default

    # ---- scalars
    def text(self, value: Any, field: str, node: Any = None, *, empty: bool = False) -> str:
        if isinstance(value, bool) or value is None or not isinstance(value, str):
            hint = "; quote it" if isinstance(value, (int, float, bool)) else ""
            raise self.bad(field, f"must be text, not {_kind(value)}{hint}", node)
        if not empty and not value.strip():
            raise self.bad(field, "must not be empty", node)
        return value.strip()

    def flag(self, value: Any, field: str, node: Any = None) -> bool:
        if not isinstance(value, bool):
            raise self.bad(field, f"must be true or false, not {_kind(value)}", node)
        return value

    def integer(self, value: Any, field: str, lo: int, hi: int, node: Any = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.bad(field, f"must be a whole number, not {_kind(value)}", node)
        if not lo <= value <= hi:
            raise self.bad(field, f"must be between {lo} and {hi}, not {value}", node)
        return value

    def number(self, value: Any, field: str, *, positive: bool, hi: float, node: Any = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.bad(field, f"must be a number, not {_kind(value)}", node)
        if (value <= 0 if positive else value < 0) or value > hi:
            bound = "> 0" if positive else ">= 0"
            raise self.bad(field, f"must be {bound} and at most {hi:g}, not {value}", node)
        return float(value)

    def duration(self, value: Any, field: str, *, positive: bool, hi: float, node: Any = None) -> float:
        """`30s`, `2m`, `1h30m`, `500ms`, or a number of seconds."""
        if isinstance(value, str):
            text = value.strip().lower()
            if not re.fullmatch(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+|\d+(?:\.\d+)?", text):
                raise self.bad(field, f"{value!r} is not a duration (e.g. 30s, 2m, 1h30m, 500ms, or seconds)", node)
            total = 0.0
            for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text):
                total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "": 1}[unit]
            value = total
        return self.number(value, field, positive=positive, hi=hi, node=node)

    def text_list(self, value: Any, field: str, node: Any = None) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.bad(field, f"must be a list, not {_kind(value)}", node)
        out = []
        for i, item in enumerate(value):
            out.append(self.attempt(lambda: self.text(item, f"{field}[{i}]", node), ""))
        return tuple(x for x in out if x)

    # ---- the document
    def document(self, data: Any) -> RulesFile:
        if data is None:
            raise self.bad(None, "the file is empty (expected `rules:`; see rules.example.yaml)")
        data = self.keys(data, "", ("version", "registries", "defaults", "rules"), ("rules",))
        if "version" in data and data["version"] != 1:
            self.problem("version", f"unsupported version {data['version']!r} (this release reads 1)", data)
        registries = self.attempt(lambda: self.registries(data.get("registries", [])), ())
        defaults = self.attempt(lambda: self.defaults(data.get("defaults", {}), data), None)
        if defaults is None:
            defaults = {"rollout": {}, "ignore": ()}
        rules_data = data.get("rules")
        if not isinstance(rules_data, list):
            raise self.bad("rules", f"must be a list of rules, not {_kind(rules_data)}", data)
        rules: list[Rule] = []
        disabled: list[str] = []
        names: dict[str, int] = {}
        for index, item in enumerate(rules_data, start=1):
            name = item.get("name") if isinstance(item, dict) else None
            self.rule = name if isinstance(name, str) and name.strip() else f"#{index}"
            self.line = getattr(item, "line", None)
            try:
                rule, enabled = self.one_rule(item, index, defaults)
            except _Bad:
                continue
            if rule.name in names:
                self.problem("name", f"duplicate rule name (rule #{names[rule.name]} has it too)", item)
                continue
            names[rule.name] = index
            if enabled:
                rules.append(rule)
            else:
                disabled.append(rule.name)
        self.rule, self.line = None, None
        defaults_rollout = self.attempt(
            lambda: self.rollout_settings(defaults["rollout"], defaults.get("smoke"), defaults.get("verify"), "defaults.rollout"),
            RolloutSettings(),
        )
        if self.problems:
            raise RulesError(self.file, problems=self.problems)
        return RulesFile(self.file, tuple(rules), registries, defaults_rollout, tuple(disabled))

    def registries(self, value: Any) -> tuple[str, ...]:
        items = self.text_list(value, "registries")
        out = []
        for i, entry in enumerate(items):
            login, resource_id = parse_registry_entry(entry)
            if not LOGIN_SERVER.match(login):
                self.problem(f"registries[{i}]", f"{login!r} is not a registry login server (e.g. myreg.azurecr.io)")
                continue
            if resource_id and not REGISTRY_ID.match(resource_id):
                self.problem(
                    f"registries[{i}]",
                    "the part after '=' must be the registry's resource id "
                    "(/subscriptions/.../providers/Microsoft.ContainerRegistry/registries/NAME)",
                )
                continue
            out.append(f"{login}={resource_id}" if resource_id else login)
        return tuple(out)

    def defaults(self, value: Any, parent: Any) -> dict[str, Any]:
        allowed = ("subscription", "resource_group", "environment", "ignore", "allow_downgrade",
                   "rollout", "smoke", "verify")
        data = self.keys(value if value is not None else {}, "defaults", allowed)
        out: dict[str, Any] = {"rollout": {}, "ignore": ()}
        for key in ("subscription", "resource_group", "environment"):
            if key in data:
                out[key] = self.attempt(lambda: self.text(data[key], f"defaults.{key}", data))
        if "ignore" in data:
            out["ignore"] = self.attempt(lambda: self.text_list(data["ignore"], "defaults.ignore", data), ())
        if "allow_downgrade" in data:
            out["allow_downgrade"] = self.attempt(lambda: self.flag(data["allow_downgrade"], "defaults.allow_downgrade", data), False)
        if "rollout" in data:
            out["rollout"] = self.attempt(lambda: self.rollout_fields(data["rollout"], "defaults.rollout"), {})
        for key in ("smoke", "verify"):
            if key in data:
                out[key] = self.attempt(lambda: self.checks(data[key], f"defaults.{key}", key), ())
        return out

    def one_rule(self, item: Any, index: int, defaults: dict[str, Any]) -> tuple[Rule, bool]:
        allowed = ("name", "repository", "tags", "ignore", "targets", "environment",
                   "allow_downgrade", "rollout", "smoke", "verify", "enabled")
        data = self.keys(item, "", allowed, ("repository", "targets"))
        name = self.attempt(lambda: self.text(data["name"], "name", data), None) if "name" in data else None
        name = name or f"rule-{index}"
        if name in ("convention",) or name.startswith("tags:"):
            self.problem("name", f"{name!r} is reserved for rules acr-deploy makes itself", data)
        repositories = self.attempt(lambda: self.repositories(data["repository"], data), ())
        policy = self.attempt(lambda: self.policy(data.get("tags"), data), None)
        ignore = tuple(defaults.get("ignore", ())) + (
            self.attempt(lambda: self.text_list(data["ignore"], "ignore", data), ()) if "ignore" in data else ()
        )
        environment = data.get("environment", defaults.get("environment") or "")
        environment = self.attempt(lambda: self.text(environment, "environment", data, empty=True), "") if environment else ""
        allow = data.get("allow_downgrade", defaults.get("allow_downgrade", False))
        allow = self.attempt(lambda: self.flag(allow, "allow_downgrade", data), False)
        enabled = self.attempt(lambda: self.flag(data.get("enabled", True), "enabled", data), True)
        groups = policy.group_names() if policy is not None else None
        targets = self.attempt(lambda: self.targets(data["targets"], data, defaults, groups), ())
        fields = dict(defaults["rollout"])
        if "rollout" in data:
            fields.update(self.attempt(lambda: self.rollout_fields(data["rollout"], "rollout"), {}))
        smoke = self.attempt(lambda: self.checks(data["smoke"], "smoke", "smoke"), None) if "smoke" in data else defaults.get("smoke")
        verify = self.attempt(lambda: self.checks(data["verify"], "verify", "verify"), None) if "verify" in data else defaults.get("verify")
        rollout = self.attempt(lambda: self.rollout_settings(fields, smoke, verify, "rollout"), None)
        if policy is None or rollout is None or not repositories or not targets:
            raise _Bad()
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
            origin=f"{self.file} rule #{index}" + (f" (line {data.line})" if getattr(data, "line", None) else ""),
        )
        return rule, enabled

    def repositories(self, value: Any, node: Any) -> tuple[RepositoryPattern, ...]:
        items = self.text_list(value, "repository", node)
        if not items:
            raise self.bad("repository", "names no repository", node)
        out = []
        for i, text in enumerate(items):
            field = "repository" if isinstance(value, str) else f"repository[{i}]"
            pattern = RepositoryPattern.parse(text)
            probe = re.sub(r"[*?]|\[[^\]]*\]", "x", pattern.repository)  # globs: check the rest
            if not REPOSITORY.match(probe):
                self.problem(
                    field,
                    f"{text!r} is not a repository name or glob (lowercase letters, digits, "
                    "'.', '_', '-' and '/'; '*' and '?' as wildcards)",
                    node,
                )
                continue
            out.append(pattern)
        return tuple(out)

    def policy(self, value: Any, node: Any) -> TagPolicy:
        if value is None:
            return SemverPolicy("")
        if isinstance(value, str):
            try:
                return parse_short_policy(value)
            except ValueError as exc:
                raise self.bad("tags", str(exc), node) from exc
        data = self.keys(value, "tags", ("semver", "regex", "glob", "prereleases", "sort_by"))
        kinds = [k for k in ("semver", "regex", "glob") if k in data]
        if len(kinds) != 1:
            raise self.bad("tags", "needs exactly one of semver, regex, glob" + (f" (has {', '.join(kinds)})" if kinds else ""), data)
        kind = kinds[0]
        if "prereleases" in data and kind != "semver":
            self.problem("tags.prereleases", "applies to semver only", data)
        if "sort_by" in data and kind != "regex":
            self.problem("tags.sort_by", "applies to regex only (semver orders itself; globs have no order)", data)
        try:
            if kind == "semver":
                rng = data["semver"]
                if rng is None or rng is True:
                    rng = ""
                rng = self.text(rng, "tags.semver", data, empty=True)
                mode = data.get("prereleases", False)
                if isinstance(mode, bool):
                    mode = "yes" if mode else "no"
                elif mode not in ("yes", "no", "only"):
                    raise self.bad("tags.prereleases", "must be true, false or only", data)
                return SemverPolicy(rng, mode)
            if kind == "regex":
                pattern = self.text(data["regex"], "tags.regex", data)
                group, order = self.sort_by(data.get("sort_by"), data)
                return RegexPolicy(pattern, group, order)
            return GlobPolicy(self.text(data["glob"], "tags.glob", data))
        except ValueError as exc:
            raise self.bad(f"tags.{kind}", str(exc), data) from exc

    def sort_by(self, value: Any, node: Any) -> tuple[str | None, str]:
        if value is None:
            return None, "numerical"
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value), "numerical"
        data = self.keys(value, "tags.sort_by", ("group", "order"), ("group",))
        group = data["group"]
        if isinstance(group, bool) or not isinstance(group, (str, int)):
            raise self.bad("tags.sort_by.group", "must be a group name or number", data)
        order = data.get("order", "numerical")
        if order not in ("numerical", "alphabetical"):
            raise self.bad("tags.sort_by.order", f"must be numerical or alphabetical, not {order!r}", data)
        return str(group), order

    def targets(self, value: Any, node: Any, defaults: dict[str, Any], groups: frozenset[str] | None) -> tuple[TargetTemplate, ...]:
        if not isinstance(value, list) or not value:
            raise self.bad("targets", "must be a non-empty list of targets ({app: NAME, ...})", node)
        out = []
        for i, item in enumerate(value):
            field = f"targets[{i}]"
            try:
                data = self.keys(item, field, ("app", "subscription", "resource_group", "container"), ("app",))
                out.append(self.one_target(data, field, defaults, groups))
            except _Bad:
                continue
        if len(out) != len(value):
            raise _Bad()
        return tuple(out)

    def one_target(self, data: dict, field: str, defaults: dict[str, Any], groups: frozenset[str] | None) -> TargetTemplate:
        ok = True
        resolved: dict[str, str | None] = {}
        fallbacks = {
            "subscription": (self.fallback_subscription, "ACR_DEPLOY_SUBSCRIPTION_ID"),
            "resource_group": (self.fallback_resource_group, "ACR_DEPLOY_RESOURCE_GROUP"),
        }
        for key in ("app", "subscription", "resource_group", "container"):
            f = f"{field}.{key}"
            if key in data:
                value = self.attempt(lambda: self.text(data[key], f, data))
            else:
                value = defaults.get(key) if key in fallbacks else None
                if value is None and key in fallbacks:
                    value = fallbacks[key][0]
                    if not value:
                        self.problem(f, f"not set here, in defaults, or by {fallbacks[key][1]}", data)
            if value is None:
                ok = ok and key == "container"
                resolved[key] = None
                continue
            if not self.template_ok(value, f, key, groups, data):
                ok = False
            resolved[key] = value
        if not ok:
            raise _Bad()
        return TargetTemplate(
            resolved["subscription"], resolved["resource_group"], resolved["app"], resolved["container"]  # type: ignore[arg-type]
        )

    def template_ok(self, value: str, field: str, key: str, groups: frozenset[str] | None, node: Any) -> bool:
        try:
            check_template(value, groups if groups is not None else frozenset())
        except TemplateError as exc:
            if groups is not None or "{group:" not in value:  # unknown groups: the policy itself was broken
                self.problem(field, str(exc), node)
                return False
        if placeholders(value):
            if key in ("app", "container") and not re.fullmatch(r"[a-z0-9-]*", literal_text(value)):
                self.problem(field, f"{value!r}: outside placeholders only lowercase letters, digits and '-' are allowed", node)
                return False
            return True
        valid = {
            "app": is_valid_app_name, "container": is_valid_container_name,
            "resource_group": is_valid_resource_group, "subscription": is_valid_subscription,
        }[key](value)
        if not valid:
            rules = {
                "app": "Container App names are 2-32 lowercase letters, digits and '-', start with a letter, end with a letter or digit, no '--'",
                "container": "container names are lowercase letters, digits and '-', start with a letter",
                "resource_group": "resource group names are up to 90 letters, digits, '_', '-', '.', '(', ')', not ending in '.'",
                "subscription": "expected a subscription id",
            }[key]
            self.problem(field, f"{value!r} is not valid: {rules}", node)
        return valid

    # ---- rollout and checks
    def rollout_fields(self, value: Any, field: str) -> dict[str, Any]:
        allowed = ("strategy", "steps", "bake", "ready_timeout", "keep_previous",
                   "allow_single_mode_switch", "deadline")
        data = self.keys(value, field, allowed)
        out: dict[str, Any] = {}
        f = lambda key: f"{field}.{key}"  # noqa: E731
        if "strategy" in data:
            s = data["strategy"]
            if s not in ("all-at-once", "canary"):
                self.problem(f("strategy"), f"must be all-at-once or canary, not {s!r}", data)
            else:
                out["strategy"] = Strategy(s)
        if "steps" in data:
            out["steps"] = self.attempt(lambda: self.steps(data["steps"], f("steps"), data))
        if "bake" in data:
            out["bake_s"] = self.attempt(lambda: self.duration(data["bake"], f("bake"), positive=False, hi=86400, node=data))
        if "ready_timeout" in data:
            out["ready_timeout_s"] = self.attempt(lambda: self.duration(data["ready_timeout"], f("ready_timeout"), positive=True, hi=86400, node=data))
        if "deadline" in data:
            out["deadline_s"] = self.attempt(lambda: self.duration(data["deadline"], f("deadline"), positive=True, hi=7 * 86400, node=data))
        if "keep_previous" in data:
            out["keep_previous"] = self.attempt(lambda: self.integer(data["keep_previous"], f("keep_previous"), 0, 10, data))
        if "allow_single_mode_switch" in data:
            out["allow_single_mode_switch"] = self.attempt(lambda: self.flag(data["allow_single_mode_switch"], f("allow_single_mode_switch"), data))
        if any(v is None for v in out.values()):
            raise _Bad()
        return out

    def steps(self, value: Any, field: str, node: Any) -> tuple[int, ...]:
        if not isinstance(value, list) or not value:
            raise self.bad(field, "must be a list of traffic percentages, e.g. [10, 50, 100]", node)
        steps = [self.integer(v, f"{field}[{i}]", 1, 100, node) for i, v in enumerate(value)]
        if any(b <= a for a, b in zip(steps, steps[1:])):
            raise self.bad(field, f"must increase strictly, not {steps}", node)
        if steps[-1] != 100:
            raise self.bad(field, f"must end at 100 (the last step takes all traffic), not {steps[-1]}", node)
        return tuple(steps)

    def rollout_settings(self, fields: dict[str, Any], smoke: Any, verify: Any, field: str) -> RolloutSettings:
        fields = dict(fields)
        strategy = fields.get("strategy", Strategy.ALL_AT_ONCE)
        if strategy is Strategy.CANARY:
            fields.setdefault("steps", DEFAULT_CANARY_STEPS)
            if len(fields["steps"]) < 2:
                raise self.bad(f"{field}.steps", "a canary needs at least one step below 100, e.g. [10, 50, 100]")
        elif fields.get("steps", (100,)) != (100,):
            raise self.bad(f"{field}.steps", "traffic steps need strategy: canary (all-at-once moves 100% at once)")
        if smoke is not None:
            fields["smoke"] = tuple(smoke)
        if verify is not None:
            fields["verify"] = tuple(verify)
        settings = RolloutSettings(**fields)
        needed = settings.ready_timeout_s + settings.bake_s * max(0, len(settings.steps) - 1)
        if settings.deadline_s < needed:
            raise self.bad(
                f"{field}.deadline",
                f"{settings.deadline_s:g}s is shorter than ready_timeout + bake per step ({needed:g}s): "
                "every rollout would miss it",
            )
        return settings

    def checks(self, value: Any, field: str, kind: str) -> tuple[SmokeCheck, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.bad(field, f"must be a list of checks, not {_kind(value)}")
        out: list[SmokeCheck] = []
        names: set[str] = set()
        failed = False
        for i, item in enumerate(value):
            try:
                check = self.one_check(item, f"{field}[{i}]", f"{kind}-{i + 1}")
            except _Bad:
                failed = True
                continue
            if check.name in names:
                self.problem(f"{field}[{i}].name", f"duplicate check name {check.name!r}", item)
                failed = True
            names.add(check.name)
            out.append(check)
        if failed:
            raise _Bad()
        return tuple(out)

    def one_check(self, item: Any, field: str, default_name: str) -> SmokeCheck:
        allowed = ("name", "method", "path", "expect_status", "body_contains", "json", "headers",
                   "timeout", "max_latency_ms", "retries", "backoff", "consecutive_passes")
        data = self.keys(item, field, allowed)
        f = lambda key: f"{field}.{key}"  # noqa: E731
        kw: dict[str, Any] = {"name": default_name}
        get = self.attempt
        if "name" in data:
            kw["name"] = get(lambda: self.text(data["name"], f("name"), data), default_name)
        if "method" in data:
            method = get(lambda: self.text(data["method"], f("method"), data), "GET").upper()
            if method not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
                self.problem(f("method"), f"{method!r} is not an HTTP method", data)
            kw["method"] = method
        if "path" in data:
            path = get(lambda: self.text(data["path"], f("path"), data), "/")
            # Appended to the revision's own URL: a full URL or '//host' would probe another host.
            if not path.startswith("/") or path.startswith("//") or re.search(r"\s", path):
                self.problem(f("path"), f"{path!r} must be a path starting with '/' (the host is the revision's)", data)
            kw["path"] = path
        if "expect_status" in data:
            raw = data["expect_status"]
            codes = raw if isinstance(raw, list) else [raw]
            kw["expect_status"] = tuple(
                get(lambda: self.integer(c, f("expect_status"), 100, 599, data), 200) for c in codes
            )
            if not codes:
                self.problem(f("expect_status"), "names no status", data)
        if "body_contains" in data:
            kw["body_contains"] = get(lambda: self.text(data["body_contains"], f("body_contains"), data))
        if "json" in data:
            try:
                js = self.keys(data["json"], f("json"), ("field", "equals"), ("field", "equals"))
                kw["json_field"] = self.text(js["field"], f("json.field"), js)
                if isinstance(js["equals"], (dict, list)):
                    self.problem(f("json.equals"), "must be a single value (text, number, true/false, null)", js)
                kw["json_equals"] = js["equals"]
            except _Bad:
                pass
        if "headers" in data:
            headers = data["headers"]
            if not isinstance(headers, dict):
                self.problem(f("headers"), f"must be a mapping of header: value, not {_kind(headers)}", data)
            else:
                pairs = []
                for name, val in headers.items():
                    if not isinstance(name, str) or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                        self.problem(f("headers"), f"{name!r} is not a header name", data)
                    elif SENSITIVE_HEADER.search(name):
                        self.problem(
                            f(f"headers.{name}"),
                            "looks like a credential; rules (smoke checks included) are stored with every "
                            "deployment, so secrets must not be here (use an endpoint that needs none)",
                            data,
                        )
                    elif not isinstance(val, str):
                        self.problem(f(f"headers.{name}"), f"must be text, not {_kind(val)}; quote it", data)
                    else:
                        pairs.append((name, val))
                kw["headers"] = tuple(pairs)
        if "timeout" in data:
            kw["timeout_s"] = get(lambda: self.duration(data["timeout"], f("timeout"), positive=True, hi=120, node=data), 5.0)
        if "max_latency_ms" in data:
            kw["max_latency_ms"] = get(lambda: self.number(data["max_latency_ms"], f("max_latency_ms"), positive=True, hi=120_000, node=data))
        if "retries" in data:
            kw["retries"] = get(lambda: self.integer(data["retries"], f("retries"), 0, 50, data), 3)
        if "backoff" in data:
            kw["backoff_s"] = get(lambda: self.duration(data["backoff"], f("backoff"), positive=False, hi=300, node=data), 1.0)
        if "consecutive_passes" in data:
            kw["consecutive_passes"] = get(lambda: self.integer(data["consecutive_passes"], f("consecutive_passes"), 1, 100, data), 1)
        return SmokeCheck(**kw)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()} (true/false)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return f"{value!r}"


# --------------------------------------------------------------------------- entry points


def parse_rules(
    text: str, file: str = "<rules>", *, subscription: str | None = None,
    resource_group: str | None = None,
) -> RulesFile:
    """Parse and validate a rules document. `subscription`/`resource_group` are the settings'
    defaults, used by targets that name neither (nor `defaults:` does). Raises RulesError."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"not valid YAML: {problem}" + (f" ({context})" if context else "")
        raise RulesError(file, None, None, message, line=line) from exc
    parser = _Parser(file, subscription, resource_group)
    try:
        return parser.document(data)
    except _Bad:
        raise RulesError(file, problems=parser.problems) from None


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
