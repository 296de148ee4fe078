"""The rules document: YAML in, validated `Rule`s out (pure; the file is read by the caller or by
`load_rules_file`). This module reads the document itself (`version`, `registries`, `defaults`,
`rules`); the package (`shared.domain.rules`) is the public face of the rules domain.

Validation is strict because a typo in a deploy rule is a silent outage: unknown keys, duplicate
keys, wrong types and out-of-range values are all errors. Every problem is collected (not just the
first) and named by file, line, rule and field: `RulesError.problems`. See docs/rules.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from shared.domain.freeze import FreezeWindow
from shared.domain.model import RolloutSettings
from shared.domain.references import LOGIN_SERVER, REGISTRY_RESOURCE_ID, RegistryEntry
from shared.domain.rules.entry import Fallbacks, read_rule
from shared.domain.rules.fields import BadValue, FieldReader, RulesError, kind
from shared.domain.rules.freezes import read_freezes
from shared.domain.rules.planning import Rule
from shared.domain.rules.rollout_settings import checks, rollout_fields, rollout_settings
from shared.domain.rules.yaml_loader import load_yaml

MAX_RULES_FILE_BYTES = 1_000_000
DEFAULTS_KEYS = ("subscription", "resource_group", "environment", "ignore", "allow_downgrade",
                 "rollout", "smoke", "verify")


@dataclass(frozen=True)
class RulesFile:
    path: str
    rules: tuple[Rule, ...]
    registries: tuple[str, ...] = ()  # "loginserver" or "loginserver=resourceId", as the setting
    defaults_rollout: RolloutSettings = RolloutSettings()  # for rules from resource tags
    disabled: tuple[str, ...] = ()  # names of rules with enabled: false
    freezes: tuple[FreezeWindow, ...] = ()  # every window of `freezes:`; each rule carries its own


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
    data = r.keys(data, "", ("version", "registries", "defaults", "freezes", "rules"), ("rules",))
    if "version" in data and data["version"] != 1:
        r.problem("version", f"unsupported version {data['version']!r} (this release reads 1)", data)
    registries = r.attempt(lambda: _registries(r, data.get("registries", [])), ())
    freezes = r.attempt(lambda: read_freezes(r, data.get("freezes")), ())
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
    _unknown_freeze_rules(r, freezes, {*names})
    if r.problems:
        raise RulesError(r.file, problems=r.problems)
    rules = [_with_freezes(rule, freezes) for rule in rules]
    # Rules from resource tags: the windows that name no rule (their rule names are made up).
    defaults_rollout = replace(defaults_rollout, controls=replace(
        defaults_rollout.controls, freezes=tuple(w for w in freezes if not w.scope.rules)))
    return RulesFile(r.file, tuple(rules), registries, defaults_rollout, tuple(disabled), freezes)


def _with_freezes(rule: Rule, freezes: tuple[FreezeWindow, ...]) -> Rule:
    """The rule's rollout carries the windows that may hold it (app scopes are checked at run time)."""
    mine = tuple(w for w in freezes if w.scope.applies_to_rule(rule.name, rule.environment))
    controls = replace(rule.rollout.controls, freezes=mine)
    return replace(rule, rollout=replace(rule.rollout, controls=controls))


def _unknown_freeze_rules(r: FieldReader, freezes: tuple[FreezeWindow, ...], names: set[str]) -> None:
    import fnmatch

    for i, w in enumerate(freezes):
        for pattern in w.scope.rules:
            if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
                r.problem(f"freezes[{i}].rules", f"{pattern!r} names no rule in this file")


def _registries(r: FieldReader, value: Any) -> tuple[str, ...]:
    items = r.text_list(value, "registries")
    out = []
    for i, entry in enumerate(items):
        parsed = RegistryEntry.parse(entry)
        if not LOGIN_SERVER.fullmatch(parsed.login_server):
            r.problem(f"registries[{i}]",
                      f"{parsed.login_server!r} is not a registry login server (e.g. myreg.azurecr.io)")
            continue
        if parsed.resource_id and not REGISTRY_RESOURCE_ID.fullmatch(parsed.resource_id):
            r.problem(
                f"registries[{i}]",
                "the part after '=' must be the registry's resource id "
                "(/subscriptions/.../providers/Microsoft.ContainerRegistry/registries/NAME)",
            )
            continue
        out.append(str(parsed))
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
